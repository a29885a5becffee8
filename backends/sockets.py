"""The `interactive_socket` of a job's conf, as plain data (no Django, no engine).

An interactive routine names where its server listens inside the job:
`0.0.0.0:8787` (TCP) or `unix:///tmp/service.sock` (a Unix socket). This
module parses and checks that value, says where the platform connects to
reach it (an address `tcp://host:port` or `unix:///host/path`), and probes
whether something accepts connections there yet. Backends and services build
on it; every rule is unit-tested with plain asserts.
"""

from __future__ import annotations

import ipaddress
import posixpath
import socket
from dataclasses import dataclass

CONF_KEY = "interactive_socket"
# Folders a Unix socket may not live in: the socket's folder is replaced by a shared empty one on Docker.
_SYSTEM_DIRS = frozenset(
    {"/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/sbin", "/sys", "/usr", "/usr/bin"}
    | {"/usr/lib", "/usr/local", "/usr/local/bin", "/usr/sbin", "/var", "/mnt", "/mnt/pipe", "/root", "/home"}
)
MAX_UNIX_PATH = 100  # sun_path holds 108 bytes; leave room for the host folder on the other side
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_HOSTS = frozenset({"", "0.0.0.0", "::", "*"})


@dataclass(frozen=True)
class Socket:
    """Where the server inside the job listens: kind "tcp" (host, port) or "unix" (path)."""

    kind: str
    host: str = ""
    port: int = 0
    path: str = ""

    @property
    def loopback_only(self) -> bool:
        return self.kind == "tcp" and self.host in LOOPBACK_HOSTS

    @property
    def folder(self) -> str:
        return posixpath.dirname(self.path)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


def is_interactive(conf: dict | None) -> bool:
    return bool((conf or {}).get(CONF_KEY))


def parse_socket(value: str) -> Socket:
    """The socket `value` names; ValueError with a sentence a user can act on."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{CONF_KEY} must be 'host:port' (e.g. 0.0.0.0:8787) or 'unix:///path/to/socket'.")
    value = value.strip()
    if value.startswith("unix://"):
        return _parse_unix(value[len("unix://") :])
    if "://" in value:
        raise ValueError(f"{CONF_KEY} {value!r}: only TCP ('0.0.0.0:8787') and 'unix://' sockets are supported.")
    return _parse_tcp(value)


def _parse_tcp(value: str) -> Socket:
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError(f"{CONF_KEY} {value!r} has no port: write it as host:port, e.g. 0.0.0.0:8787.")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{CONF_KEY} {value!r}: the port must be a number from 1 to 65535.")
    if host not in ANY_HOSTS and host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{CONF_KEY} {value!r}: the host must be an IP address, e.g. 0.0.0.0.") from None
    return Socket("tcp", host=host, port=int(port))


def _parse_unix(path: str) -> Socket:
    if not path.startswith("/"):
        raise ValueError(f"{CONF_KEY} unix://{path}: the socket path must be absolute, e.g. unix:///tmp/service.sock.")
    if "\x00" in path or ".." in path.split("/") or path.endswith("/"):
        raise ValueError(f"{CONF_KEY} unix://{path} is not a plain path to a socket file.")
    path = posixpath.normpath(path)
    if len(path.encode()) > MAX_UNIX_PATH:
        raise ValueError(f"{CONF_KEY} unix://{path} is too long for a Unix socket (at most {MAX_UNIX_PATH} bytes).")
    if posixpath.dirname(path) in _SYSTEM_DIRS:
        raise ValueError(
            f"{CONF_KEY} unix://{path}: put the socket in a folder of its own, e.g. /tmp or /run/app; "
            "the platform shares that folder with the job."
        )
    return Socket("unix", path=path)


def tcp_address(host: str, port: int) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def unix_address(path: str) -> str:
    return f"unix://{path}"


def split_address(address: str) -> tuple[str, str, int]:
    """("tcp", host, port) or ("unix", path, 0) of an address this module made."""
    if address.startswith("unix://"):
        return "unix", address[len("unix://") :], 0
    if not address.startswith("tcp://"):
        raise ValueError(f"not an interactive address: {address!r}")
    host, _, port = address[len("tcp://") :].rpartition(":")
    return "tcp", host.strip("[]"), int(port)


def accepts(address: str, *, timeout: float = 0.5) -> bool:
    """Whether something accepts connections at `address` now (connects, then closes at once)."""
    kind, where, port = split_address(address)
    try:
        if kind == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(where)
        else:
            socket.create_connection((where, port), timeout=timeout).close()
        return True
    except OSError:
        return False

"""Which network addresses the platform may connect to on a user's behalf (git remotes).

A user names a host; the platform resolves it once with the system resolver
(so every spelling of an address, `0x7f000001`, `2130706433`, `127.1`,
`[::ffff:127.0.0.1]`, ends up as the same address), refuses it when any of its
addresses is not a public one, and hands back the checked address so the
connection goes there and nowhere else (a second lookup could answer
differently: DNS rebinding).

Operators open holes with ACC_GIT_ALLOWED_NETWORKS: CIDRs (`10.0.0.0/8`,
`127.0.0.1`) and host names (`git.internal`, or `.internal` for every name
under it). Pure apart from the resolver; reads its settings through arguments.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass

SETTING = "ACC_GIT_ALLOWED_NETWORKS"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class Refused(Exception):
    """The host may not be connected to; the message says why and how an operator may allow it."""


class Unresolved(Refused):
    """The host name did not resolve (or not in time): nothing can be said about its addresses."""


@dataclass(frozen=True)
class Target:
    host: str  # as the URL names it (lower case, no brackets, IDNA-encoded)
    port: int
    address: str  # the checked address the connection must use

    @property
    def bracketed(self) -> str:
        """The address as it is written in a URL or a curl resolve entry."""
        return f"[{self.address}]" if ":" in self.address else self.address


@dataclass(frozen=True)
class Allowed:
    networks: tuple[Network, ...] = ()
    names: tuple[str, ...] = ()  # exact names, or ".suffix" for every name below it

    @classmethod
    def parse(cls, entries) -> Allowed:
        networks, names = [], []
        for entry in entries or ():
            entry = str(entry).strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.append(entry.rstrip("."))
        return cls(tuple(networks), tuple(names))

    def allows_name(self, host: str) -> bool:
        host = host.rstrip(".")
        return any(host == n or (n.startswith(".") and host.endswith(n)) for n in self.names)

    def allows_address(self, ip: Address) -> bool:
        candidates = [ip, *_embedded_ipv4(ip)]
        return any(c.version == net.version and c in net for c in candidates for net in self.networks)


def _embedded_ipv4(ip: Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo): they reach the same hosts."""
    if ip.version != 6:
        return []
    found = []
    if ip.ipv4_mapped:
        found.append(ip.ipv4_mapped)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour:
        found.append(ip.sixtofour)
    if ip.teredo:
        found.extend(ip.teredo)
    return found


def kind_of(ip: Address) -> str | None:
    """What makes `ip` off limits ("a loopback address", ...), or None for a public address."""
    for inner in _embedded_ipv4(ip):
        kind = kind_of(inner)
        if kind:
            return f"{kind} ({inner} in an IPv6 form)"
    if ip.version == 6 and ip.ipv4_mapped:  # the mapped form of a public IPv4 address
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.version == 6 and ip in _UNIQUE_LOCAL:
        return "a unique-local address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a non-public address"
    return None


def resolve(host: str, port: int, *, timeout: float) -> list[str]:
    """The addresses `host` resolves to, within `timeout` seconds; raises Refused otherwise.

    The lookup runs in a daemon thread: a slow resolver costs the caller at most
    `timeout`, never its thread.
    """
    outcome: dict = {}

    def work():
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="acc-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise Unresolved(f"{host} did not resolve within {timeout:g} s")
    if "error" in outcome:
        raise Unresolved(f"{host} does not resolve ({getattr(outcome['error'], 'strerror', None) or outcome['error']})")
    addresses = list(dict.fromkeys(info[4][0] for info in outcome["infos"]))
    if not addresses:
        raise Unresolved(f"{host} does not resolve")
    return addresses


def idna_host(host: str) -> str:
    host = host.strip().lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused(f"{host!r} is not a valid host name") from None


def check(host: str, port: int, *, allowed: Allowed, timeout: float) -> Target:
    """Resolve `host` and return the address to connect to; Refused if any address is off limits."""
    host = idna_host(host)
    if not host:
        raise Refused("the URL names no host")
    addresses = resolve(host, port, timeout=timeout)
    name_allowed = allowed.allows_name(host)
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if name_allowed or allowed.allows_address(ip):
            continue
        kind = kind_of(ip)
        if kind:
            where = f"{host} is {kind}" if _same(host, ip) else f"{host} resolves to {ip}, {kind}"
            raise Refused(f"refused: {where}; operators may allow it with {SETTING}")
    return Target(host=host, port=port, address=addresses[0])


def _same(host: str, ip: Address) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")) == ip
    except ValueError:
        return False

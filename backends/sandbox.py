"""The local backend's sandbox: bubblewrap, a memory cgroup and symlink-proof file copies (no Django).

A sandboxed job runs as an unprivileged user (the worker's own when the
worker is not root) in new user, pid, ipc, uts, cgroup and network
namespaces. It sees a read-only /usr (with /bin, /lib*, /sbin), a short list
of /etc files, a private /proc, /dev and /tmp, its working directory and the
workflow volume, and nothing else of the host.

Memory: a cgroup of its own (v2, or the v1 memory controller) under the
worker's cgroup when this host lets the worker create one; else an address
space limit per process (`ulimit -v`), which cannot tell an out-of-memory end
from another failure.

Files a job wrote are read by the worker, often root, after the job: every
copy walks the tree with file descriptors and never follows a symlink, so a
job cannot make the worker copy or chown a host file.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import stat
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# What of /etc a job sees (read-only); passwd and group are written for the sandbox.
ETC_FILES = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "gai.conf",
    "host.conf",
    "hosts",
    "inputrc",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "magic",
    "magic.mime",
    "mime.types",
    "networks",
    "nsswitch.conf",
    "os-release",
    "profile",
    "protocols",
    "services",
    "shells",
    "ssl",
    "terminfo",
    "timezone",
)
# Paths a job's working directory may not be: they are the sandbox's own.
SYSTEM_PATHS = ("/", "/bin", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys", "/usr")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SESSION_DIR = "/run/acc-session"  # where a TCP session's forwarder socket lives inside the sandbox
SESSION_SOCKET = "server.sock"
JOB_USER = "job"


class Unavailable(Exception):
    """No sandbox can be made on this host; the message says why and what to do."""


@dataclass(frozen=True)
class Identity:
    """Whom the job runs as: uid/gid, and whether the worker must drop to them (it is root) first."""

    uid: int
    gid: int
    drop: bool


def identity(uid: int, gid: int) -> Identity:
    if os.geteuid() == 0:
        return Identity(uid, gid, True)
    return Identity(os.getuid(), os.getgid(), False)


# --- is bubblewrap usable here? -------------------------------------------------------------------
_PROBES: dict[tuple, str | None] = {}
_PROBE_LOCK = threading.Lock()


def find_bwrap(name: str) -> str | None:
    return shutil.which(name) if "/" not in name else (name if os.access(name, os.X_OK) else None)


def check(bwrap_name: str, who: Identity, *, reach: tuple[Path, ...] = ()) -> str:
    """The path of a bubblewrap that runs a sandbox here as `who`; Unavailable with the reason otherwise.

    Tried until it works once in this process: a trivial sandbox with every option a job uses, binding the folders of
    `reach` (bubblewrap opens a folder by its path as `who`, so every folder above it must let `who` pass).
    """
    key = (bwrap_name, who, reach)
    with _PROBE_LOCK:
        reason = _PROBES[key] if key in _PROBES else _probe(bwrap_name, who, reach)
        if reason is None:
            _PROBES[key] = None  # a success is kept; a failure is tried again at the next job
    if reason:
        raise Unavailable(reason)
    return find_bwrap(bwrap_name) or bwrap_name


def _probe(bwrap_name: str, who: Identity, reach: tuple[Path, ...]) -> str | None:
    bwrap = find_bwrap(bwrap_name)
    if bwrap is None:
        return f"bubblewrap ({bwrap_name}) was not found on the worker host; install it (apt-get install bubblewrap)."
    if who.drop and shutil.which("setpriv") is None:
        return "setpriv (util-linux) was not found; the worker needs it to drop root before it starts bubblewrap."
    argv = drop_privileges(who) + [bwrap, *_namespaces(network=False), *_system_binds()]
    said = _run(argv + ["--", "/bin/true"])
    if said is not None:
        return (
            f"bubblewrap ({bwrap}) cannot make a sandbox on this host: {said}. It needs unprivileged user "
            "namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0) and "
            "bubblewrap 0.8 or newer."
        )
    for i, folder in enumerate(reach):
        said = _run(argv + ["--ro-bind", str(folder), f"/probe/{i}", "--", "/bin/true"])
        if said is not None:
            return (
                f"the sandbox's user (uid {who.uid}) cannot reach {folder}: {said}. Let it pass through every "
                "folder above it (chmod o+x), or move the folder (ACC_DATA_DIR, ACC_JOBS_DIR, "
                "ACC_INTERACTIVE_SOCKET_DIR) to a place it can reach."
            )
    return None


def _run(argv: list[str]) -> str | None:
    """None when `argv` succeeds; else what went wrong, in one line."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={"PATH": SYSTEM_PATH})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"it could not be started ({exc})"
    if done.returncode == 0:
        return None
    said = (done.stderr or done.stdout).strip().splitlines()
    return said[-1] if said else f"exit code {done.returncode}"


def drop_privileges(who: Identity) -> list[str]:
    if not who.drop:
        return []
    return ["setpriv", f"--reuid={who.uid}", f"--regid={who.gid}", "--clear-groups", "--"]


def _namespaces(*, network: bool, die_with_parent: bool = True) -> list[str]:
    argv = ["--unshare-all", "--unshare-user", "--disable-userns"] + (["--die-with-parent"] if die_with_parent else [])
    return argv + (["--share-net"] if network else [])


def _system_binds() -> list[str]:
    argv = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    names = set(ETC_FILES) | {p.name for p in Path("/etc").glob("python3*")}
    for name in sorted(names):
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return argv + ["--proc", "/proc", "--dev", "/dev"]


# --- one job's sandbox ----------------------------------------------------------------------------
@dataclass
class Layout:
    """What the sandbox shows: host folders (opened by the worker) at paths inside."""

    workdir: str
    cwd: Path
    pipe_dir: Path | None = None
    binds: list[tuple[Path, str]] = field(default_factory=list)  # extra (host folder, path inside) pairs
    tmp_size: int = 0
    network: bool = False
    hostname: str = "job"


def check_workdir(workdir: str, *, pipe_mount: str) -> None:
    path = PurePosixPath(workdir or "/")
    system = [PurePosixPath(p) for p in SYSTEM_PATHS if p != "/"]
    if not path.is_absolute() or path == PurePosixPath("/") or any(p == path or p in path.parents for p in system):
        raise ValueError(
            f"The working directory {workdir or '/'} cannot be used on the local backend: the sandbox keeps "
            "/, /usr, /etc, /proc, /dev and the like for itself. Use a folder of its own, e.g. /code."
        )
    pipe = PurePosixPath(pipe_mount)
    if path == pipe or pipe in path.parents or path in pipe.parents:
        raise ValueError(f"The working directory {workdir} overlaps {pipe_mount}, the workflow volume.")


class Command:
    """The argv of a sandboxed job and the file descriptors it needs; `close()` after Popen."""

    def __init__(self, argv: list[str], fds: list[int]):
        self.argv, self.fds = argv, fds

    def close(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


def command(
    *,
    bwrap: str,
    who: Identity,
    layout: Layout,
    inner: list[str],
    cgroup: Path | None = None,
    address_space: int = 0,
    status_fd: int | None = None,
) -> Command:
    """The argv that runs `inner` in the sandbox, joining `cgroup` (or limited to `address_space` bytes) first.

    The sandbox outlives the process that starts it (a job is followed by the supervisor, not by its worker);
    bubblewrap writes its child's exit code as JSON to `status_fd` (the caller's, passed to Popen), so whoever
    watches the job later reads how it ended."""
    fds: list[int] = []

    def folder(path: Path) -> str:
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        fds.append(fd)
        return str(fd)

    def data(text: str) -> str:
        read, write = os.pipe()
        fds.append(read)
        with os.fdopen(write, "w") as out:
            out.write(text)
        return str(read)

    try:
        argv = [bwrap, *_namespaces(network=layout.network, die_with_parent=False), "--hostname", layout.hostname]
        argv += _system_binds()
        if status_fd is not None:
            argv += ["--json-status-fd", str(status_fd)]
        passwd = f"root:x:0:0:root:/root:/usr/sbin/nologin\n{JOB_USER}:x:{who.uid}:{who.gid}:job:/tmp:/bin/sh\n"
        argv += ["--ro-bind-data", data(passwd), "/etc/passwd"]
        argv += ["--ro-bind-data", data(f"root:x:0:\n{JOB_USER}:x:{who.gid}:\n"), "/etc/group"]
        if layout.network:
            argv += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
        if layout.tmp_size:
            argv += ["--size", str(int(layout.tmp_size))]
        argv += ["--tmpfs", "/tmp", "--dir", "/var", "--symlink", "../tmp", "/var/tmp"]
        argv += ["--bind-fd", folder(layout.cwd), layout.workdir]
        if layout.pipe_dir is not None:
            argv += ["--bind-fd", folder(layout.pipe_dir), "/mnt/pipe"]
        for host, inside in layout.binds:
            argv += ["--bind-fd", folder(host), inside]
        argv += ["--remount-ro", "/", "--chdir", layout.workdir, "--", *inner]
        argv = drop_privileges(who) + argv
        if cgroup is not None:
            return Command(["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup), *argv], fds)
        if address_space:
            kib = max(int(address_space) // 1024, 1)
            return Command(["/bin/sh", "-c", f'ulimit -v {kib} && exec "$@"', "sandbox", *argv], fds)
        return Command(argv, fds)
    except BaseException:
        Command([], fds).close()
        raise


def forwarding(user_command: str, *, socket_path: str, host: str, port: int) -> list[str]:
    """`inner` of a TCP session: a forwarder from `socket_path` to the server, started once the server
    accepts connections (so the socket's existence means "ready"), next to the user's own command."""
    target = f"TCP6:[{host}]:{port}" if ":" in host else f"TCP4:{host}:{port}"
    forward = (
        'until socat -u OPEN:/dev/null "$2" 2>/dev/null; do sleep 0.2; done; '
        'exec socat "UNIX-LISTEN:$1,fork,mode=600" "$2"'
    )
    start = f"/bin/sh -c {shlex.quote(forward)} forward {shlex.quote(socket_path)} {shlex.quote(target)} &"
    return ["/bin/sh", "-c", f'{start} exec /bin/sh -c "$0"', user_command]


def loopback_for(host: str) -> str:
    """The address inside the job's own network that reaches a server listening on `host`."""
    return "::1" if host in ("::", "::1") else "127.0.0.1"


# --- memory ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CgroupRoot:
    version: int
    parent: Path


_CGROUP: list[CgroupRoot | None] = []


def memory_cgroup_root() -> CgroupRoot | None:
    """Where this worker may create memory cgroups (found once per process); None when it may not."""
    if not _CGROUP:
        _CGROUP.append(_find_cgroup())
    return _CGROUP[0]


def _find_cgroup() -> CgroupRoot | None:
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in own:
        _id, controllers, path = line.split(":", 2)
        if controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    for line in mounts:
        fields = line.split(" - ")
        if len(fields) != 2:
            continue
        mount_root, mount_point = fields[0].split()[3:5]
        fstype, _source, options = (fields[1].split() + ["", ""])[:3]
        if fstype == "cgroup2" and v2_path is not None:
            found = _usable(CgroupRoot(2, _below(mount_point, mount_root, v2_path)))
        elif fstype == "cgroup" and v1_path is not None and "memory" in options.split(","):
            found = _usable(CgroupRoot(1, _below(mount_point, mount_root, v1_path)))
        else:
            continue
        if found is not None:
            return found
    return None


def _below(mount_point: str, mount_root: str, path: str) -> Path:
    """The folder of cgroup `path` where the hierarchy's `mount_root` is mounted at `mount_point`."""
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root.rstrip("/") + "/")):
        path = path[len(mount_root.rstrip("/")) :]
    return Path(mount_point + path.rstrip("/"))


def _usable(root: CgroupRoot) -> CgroupRoot | None:
    """`root` if a child with a memory limit can be made there now."""
    if root.version == 2:
        try:
            if "memory" not in (root.parent / "cgroup.controllers").read_text().split():
                return None
            if "memory" not in (root.parent / "cgroup.subtree_control").read_text().split():
                (root.parent / "cgroup.subtree_control").write_text("+memory")
        except OSError:
            return None
    probe = root.parent / f"acc-probe-{os.getpid()}"
    try:
        probe.mkdir()
        (probe / ("memory.max" if root.version == 2 else "memory.limit_in_bytes")).write_text(str(1 << 30))
        return root
    except OSError:
        return None
    finally:
        try:
            probe.rmdir()
        except OSError:
            pass


def create_cgroup(root: CgroupRoot, name: str, *, memory: int) -> Path:
    """A cgroup `name` holding at most `memory` bytes of RAM and no swap beyond it."""
    path = root.parent / name
    path.mkdir(exist_ok=True)
    if root.version == 2:
        (path / "memory.max").write_text(str(int(memory)))
        _write_if_there(path / "memory.swap.max", "0")
    else:
        (path / "memory.limit_in_bytes").write_text(str(int(memory)))
        _write_if_there(path / "memory.memsw.limit_in_bytes", str(int(memory)))
    return path


def _write_if_there(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass  # no swap accounting on this kernel


def oom_killed(cgroup: str | None) -> bool:
    """Whether the kernel killed a process of `cgroup` for lack of memory."""
    if not cgroup:
        return False
    path = Path(cgroup)
    for name in ("memory.events", "memory.oom_control"):
        try:
            text = (path / name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
    return False


def remove_cgroup(cgroup: str | None) -> None:
    if not cgroup:
        return
    try:
        os.rmdir(cgroup)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise


# --- files the job wrote, read by the worker ---------------------------------------------------------
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_beneath(base: Path, relative: str) -> tuple[int, bool]:
    """An fd of `base/relative` and whether it is a folder, reached without following any symlink.

    FileNotFoundError when it does not exist; ValueError when a part of it is a symlink or a special file.
    """
    parts = [p for p in PurePosixPath(relative).parts if p not in ("/", ".")]
    if ".." in parts:
        raise ValueError(f"{relative} climbs out of the job's folder.")
    fd = os.open(base, _DIR_FLAGS)
    try:
        for i, part in enumerate(parts):
            info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            last = i == len(parts) - 1
            if stat.S_ISLNK(info.st_mode):
                raise ValueError(f"{'/'.join(parts[: i + 1])} is a symlink; the platform does not follow links.")
            if stat.S_ISDIR(info.st_mode):
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            elif last and stat.S_ISREG(info.st_mode):
                child = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            elif last:
                raise ValueError(f"{'/'.join(parts)} is not a regular file or folder.")
            else:
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", "/".join(parts[: i + 1]))
            os.close(fd)
            fd = child
        return fd, stat.S_ISDIR(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise


def copy_out(base: Path, relative: str, dest: Path) -> bool:
    """Copy `base/relative` (a file, or a folder's contents) into `dest`, as export() promises.

    Symlinks and special files inside a folder are left out; False when the path does not exist.
    """
    try:
        fd, is_dir = open_beneath(base, relative)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if not is_dir:
            name = PurePosixPath(relative).name or "file"
            _copy_fd(fd, dest / name)
            return True
        for root, _dirs, names, root_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
            target = dest / root
            target.mkdir(parents=True, exist_ok=True)
            for name in names:
                info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):
                    continue  # symlinks, sockets, fifos: never carried out
                src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
                _copy_fd(src, target / name)
                os.close(src)
        return True
    finally:
        os.close(fd)


def _copy_fd(src: int, target: Path) -> None:
    info = os.fstat(src)
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        os.lseek(src, 0, os.SEEK_SET)
        while True:
            copied = os.sendfile(out, src, None, 1 << 24) if info.st_size else 0
            if not copied:
                break
        os.fchmod(out, stat.S_IMODE(info.st_mode) & 0o777)  # permission bits, never setuid/setgid
        os.utime(out, ns=(info.st_atime_ns, info.st_mtime_ns))
    finally:
        os.close(out)


def chown_tree(top: Path, uid: int, gid: int) -> None:
    """Give `top` and everything below it to uid:gid, never through a symlink (links themselves included)."""
    if not top.exists():
        return
    os.chown(top, uid, gid, follow_symlinks=False)
    for _root, dirs, names, root_fd in os.fwalk(top, follow_symlinks=False):
        for name in dirs + names:
            try:
                info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
                if (info.st_uid, info.st_gid) != (uid, gid):
                    os.chown(name, uid, gid, dir_fd=root_fd, follow_symlinks=False)
            except FileNotFoundError:
                pass


def make_private_dir(path: Path, *, owner: tuple[int, int] | None = None, mode: int = 0o700) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or not path.is_dir():
        raise ValueError(f"{path} is not a folder of the platform's own.")
    if owner is not None:
        os.chown(path, *owner, follow_symlinks=False)
    os.chmod(path, mode)

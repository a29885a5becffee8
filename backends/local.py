"""The `local` backend: the command runs on the worker host, in a bubblewrap sandbox.

The embedded default for a laptop and for tests of everything above the
backend. There is no image: the job runs the host's own programs (/usr),
read-only, as an unprivileged user (ACC_LOCAL_SANDBOX_UID when the worker is
root, else the worker's own user), in namespaces of its own. It sees its
working directory (root_dir/<workdir> on the host, mounted at <workdir>) and
the workflow volume (a host directory mounted at /mnt/pipe, also named in
ACC_PIPE_DIR), a private /tmp, /proc and /dev, and nothing else of the host:
no other job, no project storage, no platform process, no network unless
ACC_LOCAL_NETWORK=host. Its memory is held to its required_ram by a cgroup
where the host allows one (see `sandbox`).

An interactive job always gets a network namespace of its own, so two
sessions may listen on the same port and nothing listens on the host's
addresses; the platform reaches it only through a Unix socket in
ACC_INTERACTIVE_SOCKET_DIR/<instance>-<job>/ (a folder only the platform may
enter): the job's own socket, or for TCP a forwarder started in the sandbox
once the server accepts connections.

A job outlives the worker that started it, as a container outlives its
client: its output goes to `output.log` and bubblewrap writes its exit code
to `status.json` in the job's own folder on the host, and `backend-state.json`
there says which process group it is. The supervisor follows those files
(backends.local_watch) and settles the job from them, also after a restart.

Without a usable sandbox (no bubblewrap, no user namespaces) a job is refused
unless the operator sets ACC_LOCAL_UNSANDBOXED_UNSAFE=true: then it runs as a
plain subprocess of the worker, as before, and its log says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from backends import sandbox, sockets
from backends.base import PIPE_MOUNT, Backend, BackendError, Exit, JobSpec, job_id_of, job_name
from backends.usage import proc_stats, process_group_usage

log = logging.getLogger(__name__)

_INHERITED = {"PATH", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL"}
_INHERITED_SANDBOXED = {"LANG", "TZ"}

# Processes this process started, by job name: kept only so that an ended one is reaped (never a zombie).
# Another process (the supervisor) follows and settles the job, so `_Reaper` collects them here.
_PROCS: dict[str, subprocess.Popen] = {}
_LOCK = threading.Lock()
_REAP_EVERY = 1.0  # s


class _Reaper:
    """One thread per process that started jobs: every second it reaps those of its children that ended.
    Without it a worker would keep a zombie for every job it ever started."""

    _pid: int | None = None

    @classmethod
    def ensure(cls) -> None:  # under _LOCK
        if cls._pid != os.getpid():  # first start in this process (also after a fork)
            cls._pid = os.getpid()
            threading.Thread(target=cls._run, daemon=True, name="local-reaper").start()

    @staticmethod
    def _run() -> None:
        while True:
            time.sleep(_REAP_EVERY)
            with _LOCK:
                ended = [name for name, proc in _PROCS.items() if proc.poll() is not None]
                for name in ended:
                    del _PROCS[name]


LOG_FILE = "output.log"  # in the job's folder on the host: everything the job prints
STATUS_FILE = "status.json"  # bubblewrap's JSON status lines; the last has the exit code
STATE_FILE = "backend-state.json"  # the state `start` returned, for whoever finds the job later


class SandboxUnavailable(BackendError):
    """The job cannot be isolated on this host and the operator did not allow running it unsandboxed."""


class LocalBackend(Backend):
    name = "local"
    uses_images = False

    def __init__(self, *, jobs_dir: Path | None = None):
        from django.conf import settings

        self.jobs_dir = Path(jobs_dir or settings.ACC_JOBS_DIR)
        self.bwrap = settings.ACC_LOCAL_BWRAP
        self.unsafe = settings.ACC_LOCAL_UNSANDBOXED_UNSAFE
        self.who = sandbox.identity(settings.ACC_LOCAL_SANDBOX_UID, settings.ACC_LOCAL_SANDBOX_GID)
        self.network = settings.ACC_LOCAL_NETWORK
        self.instance = settings.ACC_INSTANCE
        self.socket_dir = Path(settings.ACC_INTERACTIVE_SOCKET_DIR)

    # --- paths ----------------------------------------------------------------
    def pipe_dir(self, pipe: str) -> Path:
        return self.jobs_dir / "pipes" / pipe

    def _session_dir(self, job_id: int) -> Path:
        """The platform's own folder of one session; the job's part of it is `<it>/s` (mode 0700)."""
        return self.socket_dir / f"{self.instance}-{job_id}"

    def _cgroup_name(self, job_id: int) -> str:
        return f"acc-{self.instance}-job-{job_id}"

    def host_path(self, state: dict, container_path: str) -> Path:
        """Where a container path lives on this host; ValueError outside workdir and /mnt/pipe."""
        base, relative = self._split(state, container_path)
        return Path(base) / relative

    def _split(self, state: dict, container_path: str) -> tuple[str, str]:
        path = PurePosixPath(container_path)
        for prefix, base in ((PIPE_MOUNT, state.get("pipe_dir")), (state["workdir"], state["cwd"])):
            if base and (path == PurePosixPath(prefix) or PurePosixPath(prefix) in path.parents):
                return base, str(path.relative_to(prefix))
        raise ValueError(
            f"{container_path} is outside {state['workdir']} and {PIPE_MOUNT}; the local backend can only map "
            "paths inside those two."
        )

    # --- lifecycle ------------------------------------------------------------
    def start(self, spec: JobSpec) -> dict:
        with _LOCK:
            earlier = _read_state(spec.host_dir)
            if earlier is not None and (_alive(earlier) or exit_recorded(earlier) is not None):
                return earlier  # started before (by this or another process): idempotent
            bwrap = self._sandbox_or_refuse()
            cwd = spec.root_dir / spec.workdir.lstrip("/")
            state = {"name": spec.name, "job_id": spec.job_id, "workdir": spec.workdir, "cwd": str(cwd)}
            state["sandboxed"] = bwrap is not None
            state["log_path"] = str(spec.host_dir / LOG_FILE)
            state["status_path"] = str(spec.host_dir / STATUS_FILE)
            sock = sockets.parse_socket(spec.interactive) if spec.interactive else None
            if bwrap is not None:
                sandbox.check_workdir(spec.workdir, pipe_mount=PIPE_MOUNT)
                if sock is not None:
                    self.check_socket(sock)
            if spec.pipe:
                pipe_dir = self.pipe_dir(spec.pipe)
                pipe_dir.mkdir(parents=True, exist_ok=True)
                state["pipe_dir"] = str(pipe_dir)
            cwd.mkdir(parents=True, exist_ok=True)
            _adopt_root(spec, state.get("pipe_dir"))
            spec.host_dir.mkdir(parents=True, exist_ok=True)
            output = open(state["log_path"], "wb")  # noqa: SIM115 - the job writes it; closed here after the start
            status_fd = os.open(state["status_path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                if bwrap is None:
                    proc = self._start_unsandboxed(spec, state, sock, output, status_fd)
                else:
                    proc = self._start_sandboxed(spec, state, sock, bwrap, output, status_fd)
            finally:
                output.close()
                os.close(status_fd)
            _PROCS[spec.name] = proc
            _Reaper.ensure()
            state["pid"] = proc.pid
            state["pid_start"] = _proc_start_time(proc.pid)
            _write_state(spec.host_dir, state)
            return state

    def _sandbox_or_refuse(self) -> str | None:
        """The bubblewrap to use; None when the operator allows running unsandboxed and there is none."""
        for folder in (self.jobs_dir, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            return sandbox.check(self.bwrap, self.who, reach=(self.jobs_dir, self.socket_dir))
        except sandbox.Unavailable as exc:
            if self.unsafe:
                log.warning("local backend: running a job without a sandbox (ACC_LOCAL_UNSANDBOXED_UNSAFE): %s", exc)
                return None
            raise SandboxUnavailable(
                f"The local backend cannot run this job in a sandbox: {exc} Until then jobs are refused; an "
                "operator may accept running them unisolated on the worker host with "
                "ACC_LOCAL_UNSANDBOXED_UNSAFE=true (unsafe: a job then reads and writes what the worker can)."
            ) from None

    def _start_sandboxed(self, spec: JobSpec, state: dict, sock, bwrap: str, output, status_fd: int):
        owner = (self.who.uid, self.who.gid)
        sandbox.chown_tree(Path(state["cwd"]), *owner)
        if state.get("pipe_dir"):
            sandbox.chown_tree(Path(state["pipe_dir"]), *owner)
        layout = sandbox.Layout(
            workdir=spec.workdir,
            cwd=Path(state["cwd"]),
            pipe_dir=Path(state["pipe_dir"]) if state.get("pipe_dir") else None,
            tmp_size=spec.storage_local,
            network=self.network == "host" and sock is None,
            hostname=spec.name,
        )
        inner = ["/bin/sh", "-c", spec.command]
        if sock is not None:
            inner = self._prepare_session(spec, state, sock, layout, owner)
        cgroup = None
        root = sandbox.memory_cgroup_root()
        if root is not None:
            cgroup = sandbox.create_cgroup(root, self._cgroup_name(spec.job_id), memory=spec.ram)
            state["cgroup"] = str(cgroup)
        else:
            inner = _with_notice(
                inner,
                f"[WARNING] This host gives the worker no memory cgroup: each process of the job is held to "
                f"{spec.ram // 1024**2} MiB of address space instead, and running out of memory is not told "
                "apart from other failures.",
            )
        inherited = {k: v for k, v in os.environ.items() if k in _INHERITED_SANDBOXED or k.startswith("LC_")}
        env = {
            **inherited,
            "PATH": sandbox.SYSTEM_PATH,
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "USER": sandbox.JOB_USER,
            "LOGNAME": sandbox.JOB_USER,
            "SHELL": "/bin/sh",
            **spec.env,
            "ACC_JOB_DIR": spec.workdir,
        }
        if spec.pipe:
            env["ACC_PIPE_DIR"] = PIPE_MOUNT
        run = sandbox.command(
            bwrap=bwrap,
            who=self.who,
            layout=layout,
            inner=inner,
            cgroup=cgroup,
            address_space=0 if cgroup is not None else spec.ram,
            status_fd=status_fd,
        )
        try:
            return subprocess.Popen(
                run.argv,
                env=env,
                pass_fds=[*run.fds, status_fd],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() and usage() find every process of it
            )
        except BaseException:
            sandbox.remove_cgroup(state.get("cgroup"))
            raise
        finally:
            run.close()

    def _prepare_session(self, spec: JobSpec, state: dict, sock, layout, owner) -> list[str]:
        """The session's socket folder, bound into the sandbox; for TCP the forwarder next to the command."""
        outer = self._session_dir(spec.job_id)
        # The platform's own; others may pass through (bubblewrap, as the job's user, opens `s` by its path)
        # but not list it. `s` is the job user's alone: only the job or root can have made a socket there.
        sandbox.make_private_dir(outer, mode=0o711)
        inner_dir = outer / "s"
        sandbox.make_private_dir(inner_dir, owner=owner, mode=0o700)
        state["session_dir"] = str(outer)
        if sock.kind == "unix":
            if sock.folder in (spec.workdir, PIPE_MOUNT):
                raise ValueError(
                    f"The interactive socket unix://{sock.path} must be in a folder of its own (e.g. /tmp or "
                    f"/run/app), not in {sock.folder}."
                )
            layout.binds.append((inner_dir, sock.folder))
            state["interactive"] = {"kind": "unix", "path": sock.path, "host_path": str(inner_dir / sock.name)}
            return ["/bin/sh", "-c", spec.command]
        if shutil.which("socat") is None:
            raise SandboxUnavailable(
                "An interactive session on TCP needs socat on the worker host (apt-get install socat): it forwards "
                "the session's Unix socket to the server inside the sandbox."
            )
        layout.binds.append((inner_dir, sandbox.SESSION_DIR))
        state["interactive"] = {
            "kind": "tcp",
            "port": sock.port,
            "host_path": str(inner_dir / sandbox.SESSION_SOCKET),
        }
        return sandbox.forwarding(
            spec.command,
            socket_path=f"{sandbox.SESSION_DIR}/{sandbox.SESSION_SOCKET}",
            host=sandbox.loopback_for(sock.host),
            port=sock.port,
        )

    def _start_unsandboxed(self, spec: JobSpec, state: dict, sock, output, status_fd: int) -> subprocess.Popen:
        """ACC_LOCAL_UNSANDBOXED_UNSAFE: a plain subprocess of the worker, as its user, on the host."""
        if sock is not None:
            state["interactive"] = _interactive_state(sock)
        # Only neutral variables from the worker: its credentials (database, Redis, keys) never reach a job.
        inherited = {k: v for k, v in os.environ.items() if k in _INHERITED or k.startswith("LC_")}
        env = {**inherited, **spec.env, "ACC_JOB_DIR": str(spec.host_dir), "HOME": str(spec.host_dir)}
        if spec.pipe:
            env["ACC_PIPE_DIR"] = state["pipe_dir"]
        notice = (
            "[WARNING] This job runs without a sandbox, as the worker's user on the worker host "
            "(ACC_LOCAL_UNSANDBOXED_UNSAFE): it is not isolated from the host, other jobs or the platform."
        )
        if spec.pipe:  # only a sandbox can show a folder at /mnt/pipe; a command that writes there fails (exit 2)
            notice += (
                f" Nor can it show the workflow volume at {PIPE_MOUNT}: it is at $ACC_PIPE_DIR ({state['pipe_dir']}); "
                f'write "$ACC_PIPE_DIR/<file>" instead of {PIPE_MOUNT}/<file>, or install bubblewrap on the worker '
                "host."
            )
        argv = _with_notice(["/bin/sh", "-c", spec.command], notice)
        # the exit code in bubblewrap's words, for whoever watches the job (by path: sh redirects fds 0-9 only)
        record = 'status=$1; shift; "$@"; printf \'{ "exit-code": %d }\\n\' $? >> "$status"'
        return subprocess.Popen(
            ["/bin/sh", "-c", record, "sh", state["status_path"], *argv],
            cwd=state["cwd"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() kills children too
        )

    def wait(self, state: dict, timeout: float | None) -> Exit | None:
        """Polls (the supervisor is told by the kernel instead: backends.local_watch)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while _alive(state):
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return exit_of(state)

    def logs(self, state: dict) -> Iterator[bytes]:
        path = state.get("log_path")
        if not path or not os.path.exists(path):
            return
        with open(path, "rb") as fh:
            while True:
                data = fh.read(65536)
                if data:
                    yield data
                elif not _alive(state):
                    if rest := fh.read():
                        yield rest
                    return
                else:
                    time.sleep(0.05)

    def stop(self, state: dict, *, grace: float = 10) -> None:
        if not _alive(state):
            return
        _terminate(state)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(state):
            time.sleep(0.05)
        _signal_group(state["pid"], signal.SIGKILL)

    def export(self, state: dict, container_path: str, dest: Path) -> bool:
        base, relative = self._split(state, container_path)
        try:
            return sandbox.copy_out(Path(base), relative, dest)
        except ValueError as exc:
            raise ValueError(f"{container_path}: {exc}") from None

    def cleanup(self, state: dict) -> None:
        if state.get("pid") and _alive(state):
            _signal_group(state["pid"], signal.SIGKILL)
        with _LOCK:
            proc = _PROCS.pop(state.get("name", ""), None)
        if proc is not None:
            proc.wait()  # killed or ended: reaped at once
        job_id = state.get("job_id")
        if job_id is None:
            job_id = job_id_of(str(state.get("name", "")))
        if job_id is not None:
            shutil.rmtree(self._session_dir(int(job_id)), ignore_errors=True)
            self._remove_cgroup(state.get("cgroup") or self._cgroup_path(int(job_id)))

    def _cgroup_path(self, job_id: int) -> str | None:
        root = sandbox.memory_cgroup_root()
        return str(root.parent / self._cgroup_name(job_id)) if root is not None else None

    def _remove_cgroup(self, cgroup: str | None) -> None:
        for _ in range(50):  # the last processes of the group may take a moment to go
            try:
                sandbox.remove_cgroup(cgroup)
                return
            except OSError:
                time.sleep(0.1)
        log.warning("local backend: could not remove the cgroup %s", cgroup)

    def usage(self, state: dict) -> tuple[float, int] | None:
        if not state.get("pid") or not _alive(state):
            return None
        return process_group_usage(state["pid"])

    def check_socket(self, sock: sockets.Socket) -> None:
        if sock.kind == "tcp" and sock.host not in sockets.ANY_HOSTS and sock.host not in sockets.LOOPBACK_HOSTS:
            raise ValueError(
                f"The interactive socket {sock.host}:{sock.port}: on the local backend a session has a network "
                f"of its own with only a loopback interface; listen on 0.0.0.0:{sock.port} instead."
            )

    def interactive_address(self, state: dict) -> str | None:
        """The session's Unix socket in the platform's folder; unsandboxed, the host's port or socket path."""
        info = state.get("interactive")
        if not info:
            return None
        if info.get("host_path"):
            return sockets.unix_address(info["host_path"])
        return sockets.tcp_address(info["host"], info["port"])

    def remove_pipe(self, pipe: str) -> None:
        shutil.rmtree(self.pipe_dir(pipe), ignore_errors=True)

    def pipe_usage(self, pipe: str, *, image: str | None = None) -> int:
        total = 0
        root = self.pipe_dir(pipe)
        if not root.is_dir():
            return 0
        for _dirpath, _dirs, names, dir_fd in os.fwalk(root, follow_symlinks=False):
            for name in names:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if _is_regular(info.st_mode):
                    total += info.st_size
        return total

    def pipe_digests(self, pipe: str, *, image: str | None = None) -> dict[str, str]:
        root = self.pipe_dir(pipe)
        found = {}
        if not root.is_dir():
            return found
        for dirpath, _dirs, names, dir_fd in os.fwalk(root, follow_symlinks=False):
            for name in names:
                if not _is_regular(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    continue
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                with os.fdopen(fd, "rb") as fh:
                    found[(Path(dirpath) / name).relative_to(root).as_posix()] = _sha256(fh)
        return found

    def load_pipe(self, pipe: str, archive: Path, *, image: str | None = None) -> None:
        target = self.pipe_dir(pipe)
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        if self.who.drop:  # the worker is root: what it put there must stay writable by the jobs that follow
            sandbox.chown_tree(target, self.who.uid, self.who.gid)

    def running_job_ids(self) -> set[int]:
        """Jobs with a folder that holds a started process (running, or ended and not yet cleaned up)."""
        found = set()
        if not self.jobs_dir.is_dir():
            return found
        for entry in os.scandir(self.jobs_dir):
            if entry.name.isdigit() and os.path.exists(os.path.join(entry.path, STATE_FILE)):
                found.add(int(entry.name))
        return found

    def state_of(self, job_id: int) -> dict | None:
        """The state `start` wrote for `job_id`, found by its folder; None if it never started."""
        return _read_state(self.jobs_dir / str(job_id))

    def started_state(self, job_id: int) -> dict | None:
        return self.state_of(job_id)

    def stop_by_id(self, job_id: int, *, grace: float = 1) -> None:
        state = self.state_of(job_id) or {"name": job_name(job_id), "job_id": job_id}
        self.stop(state, grace=grace)
        self.cleanup(state)
        for name in (STATE_FILE, STATUS_FILE, LOG_FILE):  # what start left beside the job's own files
            (self.jobs_dir / str(job_id) / name).unlink(missing_ok=True)


def exit_recorded(state: dict) -> int | None:
    """The exit code bubblewrap (or the unsandboxed wrapper) wrote; None while it runs or when it was killed."""
    try:
        lines = Path(state["status_path"]).read_text().splitlines()
    except (KeyError, OSError):
        return None
    for line in reversed(lines):
        try:
            code = json.loads(line).get("exit-code")
        except ValueError:
            continue  # a line cut short by a kill
        if code is not None:
            return int(code)
    return None


def exit_of(state: dict) -> Exit:
    """How an ended job ended: its recorded exit code (-1 when none was recorded), and whether the OOM killer
    acted in its cgroup."""
    code = exit_recorded(state)
    code = -1 if code is None else code
    return Exit(code, oom_killed=code != 0 and sandbox.oom_killed(state.get("cgroup")))


def alive(state: dict) -> bool:
    """Whether the job's process (the sandbox) still runs; a zombie has ended."""
    return _alive(state)


def _read_state(host_dir: Path) -> dict | None:
    try:
        return json.loads((Path(host_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write_state(host_dir: Path, state: dict) -> None:
    tmp = Path(host_dir) / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, Path(host_dir) / STATE_FILE)


def _with_notice(argv: list[str], notice: str) -> list[str]:
    """`argv`, printing `notice` to the job's log first."""
    return ["/bin/sh", "-c", 'printf "%s\\n" "$0" && exec "$@"', notice, *argv]


def _interactive_state(sock: sockets.Socket) -> dict:
    """Unsandboxed: the TCP port and the Unix socket path are the host's own (a server listening on every
    address is reached on loopback)."""
    if sock.kind == "tcp":
        host = "127.0.0.1" if sock.host in sockets.ANY_HOSTS or sock.host == "localhost" else sock.host
        return {"kind": "tcp", "host": host, "port": sock.port}
    return {"kind": "unix", "path": sock.path, "host_path": sock.path}


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _sha256(fh) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _adopt_root(spec: JobSpec, pipe_dir: str | None) -> None:
    """Check what the platform placed in root_dir and move /mnt/pipe content into the pipe directory."""
    root = spec.root_dir
    allowed = [root / spec.workdir.lstrip("/"), root / PIPE_MOUNT.lstrip("/")]
    for path in root.rglob("*"):
        if not path.is_dir() and not any(path.is_relative_to(a) for a in allowed):
            raise ValueError(
                f"/{path.relative_to(root)} is outside {spec.workdir} and {PIPE_MOUNT}; the local backend can only "
                "map paths inside those two."
            )
    staged = root / PIPE_MOUNT.lstrip("/")
    if staged.is_dir() and pipe_dir:
        shutil.copytree(staged, pipe_dir, dirs_exist_ok=True, symlinks=True)
        shutil.rmtree(staged)


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of a pid, so a recycled pid is never mistaken for our job."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(state: dict) -> bool:
    pid = state.get("pid")
    if not pid:
        return False
    proc = _PROCS.get(state.get("name", ""))
    if proc is not None and proc.pid == pid:
        return proc.poll() is None  # our own child: reaps it once it ended
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z" and fields[19] == state.get("pid_start")


def _terminate(state: dict) -> None:
    """TERM the job's processes. In a sandbox, not bubblewrap itself: on TERM it would die at once and take the
    job down with SIGKILL, before the command could shut down cleanly; it ends when the command does."""
    pgid = state["pid"]
    if not state.get("sandboxed"):
        _signal_group(pgid, signal.SIGTERM)
        return
    for pid in _group_members(pgid):
        if pid != pgid:
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass


def _group_members(pgid: int) -> list[int]:
    return [pid for pid, fields in proc_stats() if int(fields[2]) == pgid]  # fields[2]: the process group


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass

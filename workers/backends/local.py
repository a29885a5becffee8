"""The `local` backend: the command runs as a subprocess on the worker host.

The embedded default for a laptop and for tests of everything above the
backend. There is no image and no isolation: the "container filesystem" is
the job's root_dir, the command starts in root_dir/<workdir>, and the
workflow volume is a directory whose path the job gets in ACC_PIPE_DIR.
Container paths inside the workdir or /mnt/pipe map onto those directories.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from workers.backends import sockets
from workers.backends.base import PIPE_MOUNT, Backend, Exit, JobSpec
from workers.usage import process_group_usage

_INHERITED = {"PATH", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL"}

# Processes this worker started, by job name: the pipe to their output lives here.
_PROCS: dict[str, subprocess.Popen] = {}
_LOCK = threading.Lock()


class LocalBackend(Backend):
    name = "local"
    uses_images = False

    def __init__(self, *, jobs_dir: Path | None = None):
        from django.conf import settings

        self.jobs_dir = Path(jobs_dir or settings.ACC_JOBS_DIR)

    # --- paths ----------------------------------------------------------------
    def pipe_dir(self, pipe: str) -> Path:
        return self.jobs_dir / "pipes" / pipe

    def host_path(self, state: dict, container_path: str) -> Path:
        """Where a container path lives on this host; ValueError outside workdir and /mnt/pipe."""
        path = PurePosixPath(container_path)
        for prefix, base in ((PIPE_MOUNT, state.get("pipe_dir")), (state["workdir"], state["cwd"])):
            if base and (path == PurePosixPath(prefix) or PurePosixPath(prefix) in path.parents):
                return Path(base) / path.relative_to(prefix)
        raise ValueError(
            f"{container_path} is outside {state['workdir']} and {PIPE_MOUNT}; "
            "the local backend runs on the host and can only map paths inside those two."
        )

    # --- lifecycle ------------------------------------------------------------
    def start(self, spec: JobSpec) -> dict:
        with _LOCK:
            proc = _PROCS.get(spec.name)
            cwd = spec.root_dir / spec.workdir.lstrip("/")
            state = {"name": spec.name, "job_id": spec.job_id, "workdir": spec.workdir, "cwd": str(cwd)}
            if spec.interactive:
                state["interactive"] = _interactive_state(sockets.parse_socket(spec.interactive))
            if spec.pipe:
                pipe_dir = self.pipe_dir(spec.pipe)
                pipe_dir.mkdir(parents=True, exist_ok=True)
                state["pipe_dir"] = str(pipe_dir)
            if proc is not None:
                return {**state, "pid": proc.pid}
            cwd.mkdir(parents=True, exist_ok=True)
            _adopt_root(spec, state.get("pipe_dir"))
            # Only neutral variables from the worker: its credentials (database, Redis, keys) never reach a job.
            inherited = {k: v for k, v in os.environ.items() if k in _INHERITED or k.startswith("LC_")}
            env = {**inherited, **spec.env, "ACC_JOB_DIR": str(spec.host_dir), "HOME": str(spec.host_dir)}
            if spec.pipe:
                env["ACC_PIPE_DIR"] = state["pipe_dir"]
            proc = subprocess.Popen(
                ["/bin/sh", "-c", spec.command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() kills children too
            )
            _PROCS[spec.name] = proc
            state["pid"] = proc.pid
            state["pid_start"] = _proc_start_time(proc.pid)
            return state

    def wait(self, state: dict, timeout: float | None) -> Exit | None:
        proc = _PROCS.get(state["name"])
        if proc is None:
            return self._wait_foreign(state, timeout)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        # a negative code is the signal that ended it; report it the shell's way
        return Exit(code if code >= 0 else 128 - code)

    def _wait_foreign(self, state: dict, timeout: float | None) -> Exit | None:
        """A process started by another (dead) worker: we can only see whether it is alive."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while _alive(state):
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.2)
        return Exit(-1)

    def logs(self, state: dict) -> Iterator[bytes]:
        proc = _PROCS.get(state["name"])
        if proc is None or proc.stdout is None:
            return
        fd = proc.stdout.fileno()
        while True:
            data = os.read(fd, 65536)  # returns as soon as anything is there
            if not data:
                return
            yield data

    def stop(self, state: dict, *, grace: float = 10) -> None:
        if not _alive(state):
            return
        pgid = state["pid"]
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(state):
            time.sleep(0.05)
        _signal_group(pgid, signal.SIGKILL)

    def export(self, state: dict, container_path: str, dest: Path) -> bool:
        src = self.host_path(state, container_path)
        if not src.exists():
            return False
        dest.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True)
        else:
            shutil.copy2(src, dest / src.name)
        return True

    def cleanup(self, state: dict) -> None:
        with _LOCK:
            proc = _PROCS.pop(state["name"], None)
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        elif state.get("pid") and _alive(state):
            _signal_group(state["pid"], signal.SIGKILL)

    def usage(self, state: dict) -> tuple[float, int] | None:
        if not state.get("pid") or not _alive(state):
            return None
        return process_group_usage(state["pid"])

    def interactive_address(self, state: dict) -> str | None:
        """The subprocess's own port on this host (loopback when it listens everywhere), or its socket's path."""
        info = state.get("interactive")
        if not info:
            return None
        if info["kind"] == "unix":
            return sockets.unix_address(info["host_path"])
        return sockets.tcp_address(info["host"], info["port"])

    def remove_pipe(self, pipe: str) -> None:
        shutil.rmtree(self.pipe_dir(pipe), ignore_errors=True)

    def pipe_usage(self, pipe: str, *, image: str | None = None) -> int:
        total = 0
        for dirpath, _dirs, names in os.walk(self.pipe_dir(pipe)):
            for name in names:
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink():
                    total += path.stat().st_size
        return total

    def pipe_digests(self, pipe: str, *, image: str | None = None) -> dict[str, str]:
        root = self.pipe_dir(pipe)
        found = {}
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink():
                    found[path.relative_to(root).as_posix()] = _sha256(path)
        return found

    def load_pipe(self, pipe: str, archive: Path, *, image: str | None = None) -> None:
        target = self.pipe_dir(pipe)
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")

    def running_job_ids(self) -> set[int]:
        with _LOCK:
            return {int(name.rsplit("-", 1)[1]) for name, p in _PROCS.items() if p.poll() is None}

    def stop_by_id(self, job_id: int, *, grace: float = 1) -> None:
        name = f"acc-job-{job_id}"
        proc = _PROCS.get(name)
        if proc is not None:
            state = {"name": name, "pid": proc.pid, "pid_start": _proc_start_time(proc.pid)}
            self.stop(state, grace=grace)
            self.cleanup(state)


def _interactive_state(sock: sockets.Socket) -> dict:
    """Where the proxy reaches the server. There is no container: the TCP port and the Unix socket path
    are the host's own (a server listening on every address is reached on loopback)."""
    if sock.kind == "tcp":
        host = "127.0.0.1" if sock.host in sockets.ANY_HOSTS or sock.host == "localhost" else sock.host
        return {"kind": "tcp", "host": host, "port": sock.port}
    return {"kind": "unix", "path": sock.path, "host_path": sock.path}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
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
                f"/{path.relative_to(root)} is outside {spec.workdir} and {PIPE_MOUNT}; the local backend runs on "
                "the host and can only map paths inside those two."
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
    if proc is not None:
        return proc.poll() is None
    start = _proc_start_time(pid)
    return start is not None and start == state.get("pid_start")


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass

"""Following local jobs without a thread each: the kernel says when a process ends and when a log grows.

The end of a job is a pidfd (a file descriptor that becomes readable when
the process exits, also for a process this one did not start) on the event
loop; its exit code is what bubblewrap wrote to the job's `status.json`.
Output is the job's `output.log`, read from a byte offset (the cursor)
whenever one inotify descriptor, shared by all jobs, says it was written to.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import AsyncIterator

from inotify_simple import INotify
from inotify_simple import flags as inotify_flags

from backends.base import Exit
from backends.local import LocalBackend, _signal_group, _terminate, alive, exit_of
from backends.usage import groups_usage
from backends.watch import Watcher

_READ = 256 * 1024
_BLOCK = 64 * 1024  # holes are punched in whole steps of this (a multiple of every file system's block size)
_KEEP_SIZE, _PUNCH_HOLE = 0x01, 0x02  # fallocate(2) modes
_libc = ctypes.CDLL(None, use_errno=True)
_fallocate = _libc.fallocate
_fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
_RECHECK = 1.0  # a quiet log is looked at this often anyway (the end of its process is not a file event)


class LocalWatcher(Watcher):
    def __init__(self, backend: LocalBackend):
        self.backend = backend
        self._inotify: INotify | None = None
        self._written: dict[int, asyncio.Event] = {}  # inotify watch -> "the file grew"
        self._by_path: dict[str, asyncio.Event] = {}  # the same events by log path, for `ended`

    async def open(self) -> None:
        self._inotify = INotify(nonblocking=True)
        asyncio.get_running_loop().add_reader(self._inotify.fileno(), self._on_inotify)

    async def close(self) -> None:
        if self._inotify is not None:
            asyncio.get_running_loop().remove_reader(self._inotify.fileno())
            self._inotify.close()
            self._inotify = None

    def _on_inotify(self) -> None:
        try:
            events = self._inotify.read(timeout=0)
        except BlockingIOError:
            return
        for event in events:
            woken = self._written.get(event.wd)
            if woken is not None:
                woken.set()

    async def wait(self, state: dict) -> Exit:
        if not alive(state):
            return exit_of(state)
        try:
            pidfd = os.pidfd_open(state["pid"])
        except ProcessLookupError:
            return exit_of(state)
        loop = asyncio.get_running_loop()
        try:
            if alive(state):  # still the job's process, now that the descriptor holds it
                ended = loop.create_future()
                loop.add_reader(pidfd, lambda: ended.done() or ended.set_result(None))
                try:
                    await ended
                finally:
                    loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)
        return exit_of(state)

    async def logs(self, state: dict, cursor: str) -> AsyncIterator[tuple[bytes, str]]:
        """Whole lines from byte offset `cursor`; a last line without newline comes once the job ended."""
        offset = int(cursor or 0)
        try:
            fh = open(state["log_path"], "rb")  # noqa: SIM115 - closed below, after the watch
        except (KeyError, FileNotFoundError):
            return
        grew = asyncio.Event()
        wd = self._inotify.add_watch(state["log_path"], inotify_flags.MODIFY | inotify_flags.CLOSE_WRITE)
        self._written[wd] = grew
        self._by_path[state["log_path"]] = grew
        partial = b""
        try:
            fh.seek(offset)
            while True:
                grew.clear()
                data = fh.read(_READ)
                if data:
                    partial += data
                    cut = partial.rfind(b"\n") + 1
                    if cut:
                        offset += cut
                        yield partial[:cut], str(offset)
                        partial = partial[cut:]
                    continue
                if not alive(state):
                    rest = partial + fh.read()
                    if rest:
                        yield rest, str(offset + len(rest))
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(grew.wait(), _RECHECK)
        finally:
            self._written.pop(wd, None)
            self._by_path.pop(state["log_path"], None)
            with contextlib.suppress(OSError):
                self._inotify.rm_watch(wd)
            fh.close()

    def ended(self, state: dict) -> None:
        woken = self._by_path.get(state.get("log_path", ""))
        if woken is not None:
            woken.set()

    def shipped(self, state: dict, cursor: str) -> None:
        """Give the disk blocks of `output.log` before `cursor` back (a hole: the size and every offset stay), so a
        job that prints for days holds on disk only what is not stored yet, not its whole output."""
        end = int(cursor or 0) // _BLOCK * _BLOCK
        if end <= state.get("punched", 0) or "log_path" not in state:
            return
        try:
            fd = os.open(state["log_path"], os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if _fallocate(fd, _PUNCH_HOLE | _KEEP_SIZE, 0, end) == 0:
                state["punched"] = end
        finally:
            os.close(fd)

    async def stop(self, state: dict, *, grace: float, outputs: bool = True) -> None:
        if not alive(state):
            return
        _terminate(state)
        asyncio.get_running_loop().call_later(grace, _kill_if_alive, dict(state))

    async def usage(self, states: dict[int, dict]) -> dict[int, tuple[float, int]]:
        by_group = {s["pid"]: job_id for job_id, s in states.items() if s.get("pid")}
        read = await asyncio.get_running_loop().run_in_executor(None, groups_usage, set(by_group))
        return {by_group[group]: used for group, used in read.items()}


def _kill_if_alive(state: dict) -> None:
    if alive(state):
        _signal_group(state["pid"], signal.SIGKILL)

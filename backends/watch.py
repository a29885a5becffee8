"""What the supervisor needs of a backend: every running job followed from one asyncio loop.

A `Watcher` turns the engine's own notifications into awaitables: the end
of a job (a pidfd for a local process, the Docker engine's event stream),
its output from a resume point (a log file read on inotify, the engine's
log follow), and readings of what it uses, for all jobs at once. Nothing
here costs a thread or a process per job; the states are the dicts `start`
returned, and every method is safe to call again after a restart.

Cursors are opaque strings the watcher gives with each piece of output and
takes back to resume after it, so a restarted supervisor ships neither a
duplicate nor a gap.
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from backends.base import Exit


class Watcher(abc.ABC):
    async def open(self) -> None:  # noqa: B027 - a watcher may have nothing to open
        """Connect to the engine (and subscribe to its events) before the first `present`."""

    async def close(self) -> None:  # noqa: B027
        """Let go of the engine's connections."""

    @abc.abstractmethod
    async def wait(self, state: dict) -> Exit:
        """Return once the job has ended (at once if it already has), with how it ended; also when the engine
        finds it cannot start it (`Exit.problem` says why)."""

    async def started(self, state: dict) -> float | None:
        """For an engine on which `start` returns before the command runs: wait until it was seen to start, and
        return when (epoch seconds). None when the start was not watched (it ran when `start` returned, or
        before this watcher saw the job) or never comes (the job cannot start)."""
        return None

    @abc.abstractmethod
    def logs(self, state: dict, cursor: str) -> AsyncIterator[tuple[bytes, str]]:
        """The job's output after `cursor` ("" = from the start) as (bytes, cursor after them) until it ended."""

    def ended(self, state: dict) -> None:  # noqa: B027 - most engines end their log stream themselves
        """`wait` returned: a `logs` iterator of this job that waits for more may look one last time now."""

    def shipped(self, state: dict, cursor: str) -> None:  # noqa: B027 - most engines keep (and cap) logs themselves
        """The output up to `cursor` is stored for good: an engine that keeps it on our disk may let it go."""

    @abc.abstractmethod
    async def stop(self, state: dict, *, grace: float, outputs: bool = True) -> None:
        """Ask the job to end (TERM), and kill it after `grace` seconds; returns without waiting for the end.
        `outputs`: whether what the job leaves is still wanted (not after a cancel), should the engine need to
        keep something for it."""

    @abc.abstractmethod
    async def usage(self, states: dict[int, dict]) -> dict[int, tuple[float, int]]:
        """(CPU seconds so far, memory now) of each running job that could be read."""


_TIMESTAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(?:Z|\+00:00)$")


def nanoseconds(stamp: bytes) -> int | None:
    """RFC 3339 with up to nine decimals (the engine drops trailing zeros) as nanoseconds since the epoch."""
    found = _TIMESTAMP.match(stamp)
    if found is None:
        return None
    seconds = int(datetime.strptime(found.group(1).decode(), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
    return seconds * 10**9 + int((found.group(2) or b"0").decode().ljust(9, "0"))

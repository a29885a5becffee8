"""Following Docker jobs from one event loop: the engine's event stream and its log follow, through aiodocker.

One `GET /events` stream (filtered to this deployment's containers) says
when a container dies; `wait` then reads its exit code and OOM flag from
one inspect. Each running container has one `GET /containers/<id>/logs`
follow with timestamps: the timestamp of the last line shipped is the
cursor, so a restarted supervisor asks the engine for what came after it.
These are HTTP streams on the engine's socket, not threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

from backends import manifests
from backends.base import Exit, job_name
from backends.docker import INSTANCE_LABEL, DockerBackend
from backends.usage import docker_stats_usage
from backends.watch import Watcher, nanoseconds

log = logging.getLogger(__name__)

_RECHECK = 60.0  # a wait looks at its container again this often even without an event (a missed one)
_STATS_AT_ONCE = 16


class DockerWatcher(Watcher):
    def __init__(self, backend: DockerBackend):
        self.backend = backend
        self.docker: aiodocker.Docker | None = None
        self._died: dict[str, asyncio.Event] = {}  # container name -> set when its die event arrives
        self._events: asyncio.Task | None = None
        self._stats = asyncio.Semaphore(_STATS_AT_ONCE)

    async def open(self) -> None:
        url = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        # no pool limit: one connection per followed log, and aiohttp's default of 100 would stall the 101st
        if url.startswith("unix://"):  # the socket is the connector's; the URL only names a host for HTTP
            connector = aiohttp.UnixConnector(url[len("unix://") :], limit=0)
            self.docker = aiodocker.Docker(url="unix://localhost", connector=connector)
        else:
            self.docker = aiodocker.Docker(url=url, connector=aiohttp.TCPConnector(limit=0))
        # The engine sends the stream's headers only with its first event, so there is no moment at which it
        # is known to listen: each (re)connection asks for the events since just before it, which the engine
        # replays, and nothing that died meanwhile is missed.
        self._events = asyncio.create_task(self._follow_events(since=time.time() - 1))

    async def close(self) -> None:
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._events
        if self.docker is not None:
            await self.docker.close()

    def _filters(self, **more: list[str]) -> str:
        labels = [*manifests.managed_filter()["label"], f"{INSTANCE_LABEL}={self.backend.instance}"]
        return json.dumps({"label": labels, **more})

    async def _follow_events(self, *, since: float) -> None:
        """The die events of this deployment's containers; after a dropped stream every waiter looks again."""
        filters = self._filters(type=["container"], event=["die"])
        while True:
            params = {"filters": filters, "since": f"{since:.3f}"}
            since = time.time() - 1
            try:
                async with self.docker._query("events", params=params, timeout=None) as response:
                    async for line in response.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        name = (event.get("Actor", {}).get("Attributes") or {}).get("name", "")
                        woken = self._died.get(name)
                        if woken is not None:
                            woken.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("the Docker event stream dropped; reconnecting", exc_info=True)
            for woken in self._died.values():  # something may have died while nobody listened
                woken.set()
            await asyncio.sleep(1)

    async def _inspect(self, name: str) -> dict | None:
        try:
            return await self.docker._query_json(f"containers/{name}/json")
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise

    async def wait(self, state: dict) -> Exit:
        name = _name(state)
        died = self._died.setdefault(name, asyncio.Event())
        try:
            while True:
                died.clear()
                info = await self._inspect(name)
                if info is None:
                    return Exit(-1)  # removed behind our back: it ended, its exit code is lost
                status = info["State"]
                if status.get("Status") in ("exited", "dead"):
                    return Exit(int(status.get("ExitCode", -1)), oom_killed=bool(status.get("OOMKilled")))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(died.wait(), _RECHECK)
        finally:
            self._died.pop(name, None)

    async def logs(self, state: dict, cursor: str) -> AsyncIterator[tuple[bytes, str]]:
        """Each frame of the engine's log carries the time it was written: the cursor, in nanoseconds.

        A follow can end before the container does (the engine drops it) or just before its last lines
        (the engine closes it at the die event): so the stream is followed again while the container runs,
        and read once more without follow after it ended. Lines at or before the cursor are skipped.
        """
        after = [int(cursor) if cursor else 0]
        name = _name(state)
        while True:
            async for piece in self._read_logs(name, after, follow=True):
                yield piece
            info = await self._inspect(name)
            if info is None:
                return
            if info["State"].get("Status") in ("exited", "dead"):
                async for piece in self._read_logs(name, after, follow=False):
                    yield piece
                return
            await asyncio.sleep(0.5)  # dropped while it runs: follow again from the cursor

    async def _read_logs(self, name: str, after: list[int], *, follow: bool) -> AsyncIterator[tuple[bytes, str]]:
        params = {"stdout": "1", "stderr": "1", "follow": "1" if follow else "0", "timestamps": "1"}
        if after[0]:
            params["since"] = f"{after[0] // 10**9}.{after[0] % 10**9:09d}"
        try:
            async with self.docker._query(f"containers/{name}/logs", params=params, timeout=None) as resp:
                while True:
                    try:
                        header = await resp.content.readexactly(8)
                        frame = await resp.content.readexactly(int.from_bytes(header[4:], "big"))
                    except (asyncio.IncompleteReadError, aiohttp.ClientPayloadError):
                        return
                    stamp, _, data = frame.partition(b" ")
                    at = nanoseconds(stamp)
                    if at is None:  # not a timestamped frame (never seen): ship it as it is
                        yield frame, str(after[0])
                        continue
                    if at <= after[0]:
                        continue  # shipped already
                    after[0] = at
                    yield data, str(at)
        except DockerError as exc:
            if exc.status != 404:
                raise

    async def stop(self, state: dict, *, grace: float, outputs: bool = True) -> None:
        async def stop_it() -> None:
            try:
                async with self.docker._query(
                    f"containers/{_name(state)}/stop", method="POST", params={"t": str(max(0, round(grace)))}
                ):
                    pass
            except DockerError as exc:
                if exc.status not in (304, 404):
                    log.warning("could not stop %s: %s", _name(state), exc)

        asyncio.create_task(stop_it())  # the engine waits `grace` before it kills; the die event tells the end

    async def usage(self, states: dict[int, dict]) -> dict[int, tuple[float, int]]:
        async def read(job_id: int, state: dict) -> tuple[int, tuple[float, int] | None]:
            async with self._stats:
                try:
                    stats = await self.docker._query_json(
                        f"containers/{_name(state)}/stats", params={"stream": "false", "one-shot": "true"}
                    )
                except (TimeoutError, DockerError, aiohttp.ClientError):
                    return job_id, None
            return job_id, docker_stats_usage(stats or {})

        readings = await asyncio.gather(*(read(j, s) for j, s in states.items()))
        return {job_id: used for job_id, used in readings if used is not None}


def _name(state: dict) -> str:
    return state.get("name") or job_name(state["job_id"])

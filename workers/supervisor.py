"""The supervisor: one process per backend that follows every running job at once, by events.

A worker starts a job (build, inputs, `backend.start`), marks it RUNNING,
announces it on Redis and is free again. From then on the job belongs to
the supervisor, which reacts to what the engine tells it (see
backends.watch): it ships the output as ordered log chunks, samples CPU and
memory, enforces the wall-clock limit, acts on cancel requests and on an
interactive session's stop and extend, announces a session's URL once its
server accepts connections, and when the job has ended hands it to a short
worker task (`finish_job_task`) that maps its outputs and settles it.

Level-triggered: at start and every ACC_SUPERVISOR_RESYNC seconds it lists
the RUNNING jobs of its backend and adopts those it does not follow yet, so
a supervisor that was killed resumes every job (logs from the stored
cursor; a job that ended meanwhile is settled from the engine's record), and
an announcement that got lost costs seconds, not a job.

Bounded: a job costs a few coroutines and buffers, never a thread, a
process or a database connection. The database is used from two threads
(control and log writes), whatever the number of jobs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Max, Q
from django.utils import timezone

from accelerator.celery import app as celery_app
from accelerator.crypto import decrypt_json
from backends import get_backend, get_watcher, sockets
from backends.base import Exit
from backends.usage import UsageRecorder
from jobs import logs, sessions
from jobs.models import InteractiveSession, Job, LogChunk
from jobs.states import Status, command_started

log = logging.getLogger(__name__)

FINISH_JOB_TASK = "workers.tasks.finish_job_task"
_LOST = -1  # the exit code a watcher gives when the engine has no record of how the job ended
_ANNOUNCE_GRACE = 2.0  # s: a resync leaves a job that started this recently to its worker's announcement
_HANDED_KEPT = 120.0  # s: a job handed over is not adopted again meanwhile (unless its finish task was lost)


def channel(backend: str) -> str:
    return f"acc:{settings.ACC_INSTANCE}:{backend}:started"


_publisher: list[redis.Redis] = []


CONTROL = "control"  # on the channel: look at cancel and session requests now, not at the next turn


def announce(job_id: int, backend: str) -> None:
    """Tell the backend's supervisor that a job now runs (it would find it at its next resync anyway)."""
    _publish(backend, str(job_id))


def nudge(backend: str) -> None:
    """Tell the backend's supervisor that a running job was asked to stop (a cancel, a session's stop or
    extension): it acts within milliseconds instead of at its next control turn (ACC_CANCEL_CHECK_EVERY)."""
    _publish(backend, CONTROL)


def _publish(backend: str, message: str) -> None:
    if not _publisher:
        _publisher.append(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5))
    try:
        _publisher[0].publish(channel(backend), message)
    except redis.RedisError:  # the supervisor finds it at its next turn or resync anyway
        log.warning("could not tell the %s supervisor %r", backend, message, exc_info=True)


@dataclass
class Followed:
    """A running job as the supervisor sees it."""

    job_id: int
    state: dict
    ship: logs.Shipper
    running_at: float  # epoch seconds
    timeout: int
    session: dict | None = None  # an interactive job's: id, token, ends_at, ready
    end: str = ""  # how the platform ended it: "timeout", "stopped" (a session) or "" (it ended by itself)
    stopping: bool = False
    next_probe: float = 0.0  # monotonic time of the next readiness probe of a session
    sampled_at: float = 0.0  # monotonic time of its last usage reading
    usage: UsageRecorder = field(default_factory=lambda: UsageRecorder(every=settings.ACC_USAGE_EVERY))


class Supervisor:
    def __init__(self, backend=None):
        self.backend = backend or get_backend()
        self.watcher = get_watcher(self.backend)
        self.followed: dict[int, Followed] = {}
        self._control = ThreadPoolExecutor(1, thread_name_prefix="supervisor-db")
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="supervisor-logs")  # one: chunks stay in order
        self._adopting: set[int] = set()
        self._background: set[asyncio.Task] = set()  # held here: the loop keeps only weak references to tasks
        self._handed: dict[int, float] = {}  # job -> when it was handed over (its finish task may still be queued)

    # --- the loop -------------------------------------------------------------------
    async def run(self, *, on_ready=None) -> None:
        await self.watcher.open()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        listener = await self._subscribe()
        await self._resync(grace=0.0)  # at start every RUNNING job, also one started a moment ago
        if on_ready:
            on_ready()
        loops = [
            asyncio.create_task(coro)
            for coro in (
                self._listen(listener),
                self._every(settings.ACC_SUPERVISOR_RESYNC, self._resync),
                self._every(settings.ACC_CANCEL_CHECK_EVERY, self._control_turn),
                self._every(settings.ACC_USAGE_EVERY, self._sample),
                self._every(0.25, self._probe_sessions),
                self._every(min(settings.ACC_LOG_FLUSH_SECONDS / 2, 0.05), self._flush_due),
            )
        ]
        await stop.wait()
        for task in loops:
            task.cancel()
        await self._flush_due(everything=True)  # what was read is stored; the next supervisor resumes after it
        await self.watcher.close()
        await listener.aclose()

    async def _every(self, seconds: float, turn) -> None:
        while True:
            try:
                await turn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervisor: %s failed; trying again", turn.__name__)
            await asyncio.sleep(seconds)

    async def _db(self, fn, *args, writes: bool = False):
        return await asyncio.get_running_loop().run_in_executor(
            self._writes if writes else self._control, partial(_in_thread, fn, *args)
        )

    # --- finding jobs ---------------------------------------------------------------
    async def _subscribe(self):
        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=None, socket_connect_timeout=5)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel(self.backend.name))
        return pubsub

    async def _listen(self, pubsub) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    if message["data"] == CONTROL.encode():
                        self._spawn(self._control_now())
                    else:
                        await self._adopt([int(message["data"])])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("supervisor: lost the announcements channel; resubscribing", exc_info=True)
                await asyncio.sleep(1)
                try:
                    await pubsub.subscribe(channel(self.backend.name))
                except Exception:
                    log.warning("supervisor: cannot resubscribe yet", exc_info=True)

    async def _resync(self, grace: float = _ANNOUNCE_GRACE) -> None:
        """Adopt every RUNNING job of this backend nobody follows (after a restart, or a lost announcement)."""
        running = await self._db(_running_ids, self.backend.name, grace)
        await self._adopt([i for i in running if i not in self.followed])

    async def _adopt(self, ids: list[int]) -> None:
        recent = time.monotonic() - _HANDED_KEPT
        self._handed = {i: at for i, at in self._handed.items() if at > recent}
        ids = [i for i in ids if i not in self.followed and i not in self._adopting and i not in self._handed]
        if not ids:
            return
        self._adopting.update(ids)
        try:
            for row in await self._db(_load, ids, self.backend.name):
                if row["id"] in self.followed:
                    continue
                seq, total, cursor = row["resume"]
                followed = Followed(
                    job_id=row["id"],
                    state=row["state"],
                    ship=logs.Shipper(row["id"], seq=seq, total=total, cursor=cursor, secrets=row["secrets"]),
                    running_at=row["running_at"],
                    timeout=row["timeout"],
                    session=row["session"],
                )
                self.followed[followed.job_id] = followed
                self._spawn(self._follow(followed))
        finally:
            self._adopting.difference_update(ids)

    # --- one job ----------------------------------------------------------------------
    async def _follow(self, f: Followed) -> None:
        started = asyncio.create_task(self._started(f))
        try:
            pump = asyncio.create_task(self._pump(f))
            exit_ = await self._wait(f)
            self.watcher.ended(f.state)
            try:
                await asyncio.wait_for(asyncio.shield(pump), 30)
            except TimeoutError:
                pump.cancel()
                f.ship.note("[WARN] The end of the job's output could not be read in 30 s; the log may miss it.")
            f.ship.end()
            await self._hand_over(f, exit_)
        except Exception:
            log.exception("supervisor: following job %s failed; its next resync tries again", f.job_id)
        finally:
            started.cancel()
            self.followed.pop(f.job_id, None)

    async def _started(self, f: Followed) -> None:
        """A job whose engine starts it after `start` returned (a pod waiting for its node) runs from when its
        command was seen to start: its RUNNING time and its time limit count from then."""
        try:
            at = await self.watcher.started(f.state)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("supervisor: cannot tell when job %s started", f.job_id, exc_info=True)
            return
        if at is not None:
            f.running_at = at
            await self._db(command_started, f.job_id, dt.datetime.fromtimestamp(at, dt.UTC))

    async def _wait(self, f: Followed) -> Exit:
        while True:
            try:
                return await self.watcher.wait(f.state)
            except asyncio.CancelledError:
                raise
            except Exception:  # the engine is unreachable for a moment: the job goes on, so does the wait
                log.warning("supervisor: cannot wait for job %s; retrying", f.job_id, exc_info=True)
                await asyncio.sleep(2)

    async def _pump(self, f: Followed) -> None:
        try:
            async for data, cursor in self.watcher.logs(f.state, f.ship.cursor):
                f.ship.add(data, cursor)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            f.ship.note(f"[WARN] log stream interrupted: {exc}")

    async def _hand_over(self, f: Followed, exit_: Exit) -> None:
        """The job ended: store the rest of its log, then a worker maps outputs and settles it (and stores the usage
        read here, in the same write that claims the job)."""
        await self._flush(f)
        if not f.end and f.session is None and time.time() >= f.running_at + f.timeout:
            f.end = "timeout"  # stopped at its limit by a supervisor that did not live to hand it over
        end = f.end or ("lost" if exit_.exit_code == _LOST else "")
        outcome = {"exit_code": exit_.exit_code, "oom_killed": exit_.oom_killed, "end": end, "usage": f.usage.summary()}
        if exit_.problem:
            outcome["problem"] = exit_.problem
        await self._db(celery_app.send_task, FINISH_JOB_TASK, (f.job_id, outcome))
        self._handed[f.job_id] = time.monotonic()

    async def _stop(self, f: Followed, *, end: str = "", note: str = "", outputs: bool = True) -> None:
        if f.stopping:
            return
        f.stopping = True
        f.end = f.end or end
        if note:
            f.ship.note(note)
        await self.watcher.stop(f.state, grace=settings.ACC_STOP_GRACE, outputs=outputs)

    # --- turns over every job -----------------------------------------------------------
    async def _flush_due(self, *, everything: bool = False) -> None:
        now = time.monotonic()
        due = [f for f in self.followed.values() if f.ship.due and (everything or f.ship.due <= now)]
        for f in due:
            await self._flush(f)

    async def _flush(self, f: Followed) -> None:
        taken = f.ship.take()
        if taken is not None:
            seq, text, cursor = taken
            f.ship.total = await self._db(
                partial(logs.store, f.job_id, seq, text, cursor, total=f.ship.total), writes=True
            )
            self.watcher.shipped(f.state, cursor)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _control_now(self) -> None:
        try:
            await self._control_turn()
        except Exception:
            log.exception("supervisor: a control turn failed; the next one tries again")

    async def _control_turn(self) -> None:
        """Cancel requests, session stops and extensions (written by the web), and wall-clock limits."""
        if not self.followed:
            return
        asked = list(self.followed)
        running, cancelled, session_rows = await self._db(_control_rows, asked)
        now = timezone.now()
        for f in [self.followed[i] for i in asked if i in self.followed]:  # not those adopted while we asked
            if f.stopping:
                continue
            try:
                if f.job_id in cancelled or f.job_id not in running:  # cancelled, or settled (or deleted) meanwhile
                    await self._stop(f, outputs=False)  # a cancelled job's outputs are not mapped
                elif f.session is not None:
                    await self._session_turn(f, session_rows.get(f.job_id), now)
                elif now.timestamp() >= f.running_at + f.timeout:
                    await self._stop(
                        f,
                        end="timeout",
                        note=f"[ERROR] Timeout: the job ran longer than {f.timeout} s and is being stopped.",
                    )
            except Exception:  # one job's trouble must not hold up the others
                log.exception("supervisor: control of job %s failed", f.job_id)

    async def _session_turn(self, f: Followed, row: dict | None, now) -> None:
        if row is None:
            return
        if row["stop_requested_at"] is not None:
            await self._db(_session_ended, row["id"])  # before the stop: no request reaches a server going away
            await self._stop(f, end="stopped", note="[INFO] The session was asked to stop; stopping the server.")
            return
        ends_at = row["ends_at"]
        if ends_at is not None and now >= ends_at:
            await self._db(_session_ended, row["id"])
            await self._stop(
                f,
                end="timeout",
                note=f"[INFO] The session reached its end time ({_utc(ends_at)}); stopping the server.",
            )
            return
        known = f.session.get("ends_at")
        if f.session.get("ready") and known and ends_at and ends_at > known:
            f.ship.note(f"[INFO] The session was extended; it now ends at {_utc(ends_at)}.")
        f.session["ends_at"] = ends_at

    async def _probe_sessions(self) -> None:
        """A session's URL is announced once its server accepts connections: four probes a second at first,
        one a second after half a minute."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        for f in list(self.followed.values()):
            if f.session is None or f.session.get("ready") or f.stopping or now < f.next_probe:
                continue
            slow = time.time() - f.running_at > 30
            f.next_probe = now + (1.0 if slow else 0.25)
            try:
                address = await loop.run_in_executor(None, self.backend.interactive_address, f.state)
                if not address or not await loop.run_in_executor(None, sockets.accepts, address):
                    continue
                url, ends_at = await self._db(_session_ready, f.session["id"], address)
            except Exception:  # one session's trouble must not hold up the others
                log.warning("supervisor: probing the session of job %s failed", f.job_id, exc_info=True)
                continue
            f.session["ready"] = True
            f.ship.note(f"[INFO] Interactive session available at: {url}")
            f.ship.note(f"[INFO] The session ends at {_utc(ends_at)} unless it is stopped or extended.")

    async def _sample(self) -> None:
        """Usage of the jobs read longest ago, within the reading budget (the engine's time is not ours)."""
        budget = max(1, int(settings.ACC_USAGE_READS_PER_SECOND * settings.ACC_USAGE_EVERY))
        live = sorted((f for f in self.followed.values() if not f.stopping), key=lambda f: f.sampled_at)[:budget]
        if not live:
            return
        now = time.monotonic()
        for f in live:
            f.sampled_at = now
        readings = await self.watcher.usage({f.job_id: f.state for f in live})
        now = time.time()
        for job_id, (cpu, memory) in readings.items():
            f = self.followed.get(job_id)
            if f is not None:
                f.usage.add(max(now - f.running_at, 0.0), cpu, memory)


# --- database work, in the supervisor's two threads -------------------------------------------
def _in_thread(fn, *args):
    close_old_connections()  # a connection the server dropped is replaced, not reused
    return fn(*args)


def _running_ids(backend: str, grace: float) -> list[int]:
    """RUNNING jobs of `backend`, but for those that started less than `grace` s ago: the worker that started
    one announces it once its last log lines are stored, and the supervisor must not begin the log before them."""
    settled = timezone.now() - dt.timedelta(seconds=grace)
    return list(
        Job.objects.filter(status=Status.RUNNING, backend=backend)
        .filter(Q(running_at__isnull=True) | Q(running_at__lte=settled))
        .values_list("pk", flat=True)
    )


def _load(ids: list[int], backend: str) -> list[dict]:
    rows = list(
        Job.objects.filter(pk__in=ids, status=Status.RUNNING, backend=backend).values(
            "id", "backend_state", "secrets_encrypted", "running_at", "timeout", "log_bytes", "log_cursor"
        )
    )
    seqs = dict(
        LogChunk.objects.filter(job_id__in=[r["id"] for r in rows])
        .values("job_id")
        .annotate(m=Max("seq"))
        .values_list("job_id", "m")
    )
    found = {
        s["job_id"]: s
        for s in InteractiveSession.objects.filter(job_id__in=[r["id"] for r in rows]).values(
            "id", "job_id", "ends_at", "ready_at"
        )
    }
    loaded = []
    for row in rows:
        session = found.get(row["id"])
        loaded.append(
            {
                "id": row["id"],
                "state": row["backend_state"] or {},
                "secrets": list(decrypt_json(row["secrets_encrypted"], default={}).values()),
                "running_at": (row["running_at"] or timezone.now()).timestamp(),
                "timeout": row["timeout"],
                "resume": (seqs.get(row["id"]) or 0, row["log_bytes"], row["log_cursor"]),
                "session": None
                if session is None
                else {"id": session["id"], "ends_at": session["ends_at"], "ready": session["ready_at"] is not None},
            }
        )
    return loaded


def _control_rows(ids: list[int]) -> tuple[set[int], set[int], dict[int, dict]]:
    """(still RUNNING, with a cancel request, session rows) of the followed jobs: two queries for all of them."""
    running, cancelled = set(), set()
    for pk, cancel_at in Job.objects.filter(pk__in=ids, status=Status.RUNNING).values_list("pk", "cancel_requested_at"):
        running.add(pk)
        if cancel_at is not None:
            cancelled.add(pk)
    rows = InteractiveSession.objects.filter(job_id__in=ids).values("id", "job_id", "ends_at", "stop_requested_at")
    return running, cancelled, {r["job_id"]: r for r in rows}


def _session_ended(session_id: int) -> None:
    session = InteractiveSession.objects.filter(pk=session_id).first()
    if session is not None:
        sessions.mark_ended(session)


def _session_ready(session_id: int, address: str):
    session = InteractiveSession.objects.get(pk=session_id)
    sessions.mark_ready(session, address)
    return sessions.url_of(session), session.ends_at


def _utc(moment) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

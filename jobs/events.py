"""The one module that sends to the channel layer (live status and log lines).

Sends are handed to one publisher thread per process that owns a long-lived
event loop: channels_redis keeps its connections per loop, so publishing
from a fresh loop each time (async_to_sync) would open a Redis connection
per event. The caller never waits; order is kept because one thread sends
everything in turn. Live events are a convenience: the database holds the
truth and clients catch up with ?after_seq= (or `after_seq` on /ws/live/).

Groups (names valid for channels_redis: ASCII letters, digits, '-', '.'):
`job-<id>` gets `job.status` and `job.log` of that job; `run-<root id>` gets
`run.node`, the status changes of a jobflow's root and of every node;
`interactive-sessions` gets `session.ended` (the proxies listen to it).
"""

import asyncio
import logging
import os
import queue
import threading

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

# Past this many unsent events (the channel layer is down or slow) new ones are dropped rather than
# kept in memory: the database has them, and a live client refills a log gap from it.
MAX_PENDING = 10_000


class _Publisher:
    def __init__(self):
        self._queue: queue.Queue = queue.Queue(MAX_PENDING)
        self._pid = None
        self._lock = threading.Lock()
        self.dropped = 0

    def send(self, group: str, message: dict) -> None:
        if self._pid != os.getpid():  # first use in this process (also after a fork)
            with self._lock:
                if self._pid != os.getpid():
                    self._queue = queue.Queue(MAX_PENDING)
                    threading.Thread(target=self._run, daemon=True, name="channel-publisher").start()
                    self._pid = os.getpid()
        try:
            self._queue.put_nowait((group, message))
        except queue.Full:  # never block the caller (a job's log writer, a transition)
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("channel layer backlog full: %d live events dropped so far", self.dropped)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        layer = get_channel_layer()
        q = self._queue
        while True:
            group, message = q.get()
            if layer is None:
                continue
            try:
                loop.run_until_complete(layer.group_send(group, message))
            except Exception:  # a broken channel layer must never fail a job
                log.warning("could not publish to %s", group, exc_info=True)


_publisher = _Publisher()


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


def run_group(root_id: int) -> str:
    return f"run-{root_id}"


def job_status_changed(job_id: int, status: str, reason: str, *, run: int | None = None, node: str = "") -> None:
    """Tell the job's group; for a jobflow's node or root (`run` = the root's id) also the run's group."""
    message = {"job_id": job_id, "status": status, "reason": reason, "run_id": run, "node": node}
    _publisher.send(job_group(job_id), {"type": "job.status", **message})
    if run is not None:
        _publisher.send(run_group(run), {"type": "run.node", **message})


SESSIONS_GROUP = "interactive-sessions"


def session_ended(token: str) -> None:
    """Tell every proxy that a session is over, so none forwards to its server any more (interactive.proxy)."""
    _publisher.send(SESSIONS_GROUP, {"type": "session.ended", "token": token})


def job_log_appended(job_id: int, seq: int, text: str) -> None:
    _publisher.send(job_group(job_id), {"type": "job.log", "job_id": job_id, "seq": seq, "text": text})

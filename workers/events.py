"""The one module that sends to the channel layer (live status and log lines).

Sends are handed to one publisher thread per process that owns a long-lived
event loop: channels_redis keeps its connections per loop, so publishing
from a fresh loop each time (async_to_sync) would open a Redis connection
per event. The caller never waits; order is kept because one thread sends
everything in turn. Live events are a convenience: the database holds the
truth and clients catch up with ?after_seq=.
"""

import asyncio
import logging
import os
import queue
import threading

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


class _Publisher:
    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pid = None
        self._lock = threading.Lock()

    def send(self, group: str, message: dict) -> None:
        if self._pid != os.getpid():  # first use in this process (also after a fork)
            with self._lock:
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                    threading.Thread(target=self._run, daemon=True, name="channel-publisher").start()
                    self._pid = os.getpid()
        self._queue.put((group, message))

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


def job_status_changed(job_id: int, status: str, reason: str) -> None:
    _publisher.send(job_group(job_id), {"type": "job.status", "job_id": job_id, "status": status, "reason": reason})


def job_log_appended(job_id: int, seq: int, text: str) -> None:
    _publisher.send(job_group(job_id), {"type": "job.log", "job_id": job_id, "seq": seq, "text": text})

"""Turns a backend's raw output into stored, masked, ordered log chunks.

A reader thread pulls bytes from the backend; LogWriter buffers them into
whole lines, masks secret values, strips NUL bytes, and flushes a chunk at
most every ACC_LOG_FLUSH_SECONDS (or when the buffer grows large). Each
chunk is saved first and broadcast after, so a client that reconnects and
asks for ?after_seq= loses nothing.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import close_old_connections
from django.db.models import F, Max

from workers import events
from workers.models import Job, LogChunk

MASK = "********"
_FLUSH_BYTES = 64 * 1024


def mask(text: str, secrets: Iterable[str]) -> str:
    for value in sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


class LogWriter:
    """Thread-safe: the build step, the platform and the output reader all write here."""

    def __init__(self, job_id: int, *, secrets: Iterable[str] = ()):
        self.job_id = job_id
        self.secrets = [s for s in secrets if s]
        self._lock = threading.Lock()
        self._pending = ""  # text not yet ended by a newline
        self._lines: list[str] = []
        self._size = 0
        self._last_flush = time.monotonic()
        last = LogChunk.objects.filter(job_id=job_id).aggregate(m=Max("seq"))["m"]
        self._seq = last or 0

    def write(self, data: bytes | str) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        text = text.replace("\x00", "").replace("\r\n", "\n")
        with self._lock:
            text = self._pending + text
            *complete, self._pending = text.split("\n")
            for line in complete:
                self._lines.append(line + "\n")
                self._size += len(line) + 1
            if len(self._pending) > _FLUSH_BYTES:  # a huge line without newline: cut it
                self._lines.append(self._pending + "\n")
                self._size += len(self._pending)
                self._pending = ""
        if self._size >= _FLUSH_BYTES:
            self.flush()

    def info(self, message: str) -> None:
        self.write(f"[INFO] {message}\n")
        self.flush()

    def error(self, message: str) -> None:
        self.write(f"[ERROR] {message}\n")
        self.flush()

    def due(self) -> bool:
        return bool(self._lines) and time.monotonic() - self._last_flush >= settings.ACC_LOG_FLUSH_SECONDS

    def flush(self, *, final: bool = False) -> None:
        with self._lock:
            if final and self._pending:
                self._lines.append(self._pending + "\n")
                self._pending = ""
            if not self._lines:
                return
            text = mask("".join(self._lines), self.secrets)
            self._lines, self._size = [], 0
            self._seq += 1
            seq = self._seq
            self._last_flush = time.monotonic()
            LogChunk.objects.create(job_id=self.job_id, seq=seq, text=text)
            Job.objects.filter(pk=self.job_id).update(log_bytes=F("log_bytes") + len(text))
        events.job_log_appended(self.job_id, seq, text)
        self._truncate_if_needed()

    def _truncate_if_needed(self) -> None:
        """Keep the tail: past ACC_LOG_MAX_BYTES the oldest chunks go."""
        total = Job.objects.filter(pk=self.job_id).values_list("log_bytes", flat=True).first() or 0
        if total <= settings.ACC_LOG_MAX_BYTES:
            return
        excess = total - settings.ACC_LOG_MAX_BYTES
        removed = 0
        for chunk in LogChunk.objects.filter(job_id=self.job_id).order_by("seq").only("pk", "text"):
            if removed >= excess:
                break
            removed += len(chunk.text)
            chunk.delete()
        Job.objects.filter(pk=self.job_id).update(log_bytes=F("log_bytes") - removed)


def pump(source: Iterator[bytes], writer: LogWriter) -> threading.Thread:
    """Read `source` on one thread, flush to the database on another, at most every flush period."""
    q: queue.Queue = queue.Queue()

    def read():
        try:
            for data in source:
                q.put(data)
        except Exception as exc:  # the engine connection can drop while stopping a job
            q.put(f"[WARN] log stream interrupted: {exc}\n".encode())
        finally:
            q.put(None)

    def drain():
        try:
            while True:
                wait = max(0.0, settings.ACC_LOG_FLUSH_SECONDS - (time.monotonic() - writer._last_flush))
                try:
                    item = q.get(timeout=wait if writer._lines else None)
                except queue.Empty:
                    writer.flush()
                    continue
                if item is None:
                    writer.flush(final=True)
                    return
                writer.write(item)
                if writer.due():
                    writer.flush()
        finally:
            close_old_connections()

    threading.Thread(target=read, daemon=True, name=f"log-read-{writer.job_id}").start()
    drainer = threading.Thread(target=drain, daemon=True, name=f"log-drain-{writer.job_id}")
    drainer.start()
    return drainer

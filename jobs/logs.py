"""Turns a backend's raw output into stored, masked, ordered log chunks.

LogWriter buffers whatever is written (builder output, platform messages,
the job's own output) into whole lines, masks secret values and strips NUL
bytes. Its flusher thread saves a chunk at most every ACC_LOG_FLUSH_SECONDS
after the first pending line, so a steady stream costs a few writes a
second, not one per line. Each chunk is saved first and broadcast after, so
a client that reconnects and asks for ?after_seq= loses nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import connection
from django.db.models import F, Max

from jobs import events
from jobs.models import Job, LogChunk

MASK = "********"
_FLUSH_BYTES = 256 * 1024


def mask(text: str, secrets: Iterable[str]) -> str:
    for value in sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


class LogWriter:
    """Thread-safe: the build step, the platform and the output reader all write here."""

    def __init__(self, job_id: int, *, secrets: Iterable[str] = (), log_bytes: int | None = None):
        self.job_id = job_id
        self.secrets = [s for s in secrets if s]
        self._cond = threading.Condition()
        self._pending = ""  # text not yet ended by a newline
        self._lines: list[str] = []
        self._size = 0
        self._first_pending_at = 0.0
        self._closed = False
        self._flush_lock = threading.Lock()  # one chunk at a time keeps seq order
        if log_bytes == 0:  # a job with no log yet: no need to look for earlier chunks
            self._seq, self._total = 0, 0
        else:
            self._seq = LogChunk.objects.filter(job_id=job_id).aggregate(m=Max("seq"))["m"] or 0
            self._total = Job.objects.filter(pk=job_id).values_list("log_bytes", flat=True).first() or 0
        self._flusher = threading.Thread(target=self._flush_loop, daemon=True, name=f"log-flush-{job_id}")
        self._flusher.start()

    # --- writing ----------------------------------------------------------------
    def write(self, data: bytes | str) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        text = text.replace("\x00", "").replace("\r\n", "\n")
        with self._cond:
            text = self._pending + text
            *complete, self._pending = text.split("\n")
            if len(self._pending) > _FLUSH_BYTES:  # a huge line without newline: cut it
                complete.append(self._pending)
                self._pending = ""
            if complete:
                if not self._lines:
                    self._first_pending_at = time.monotonic()
                self._lines.extend(line + "\n" for line in complete)
                self._size += sum(len(line) + 1 for line in complete)
                self._cond.notify()

    def info(self, message: str) -> None:
        self.write(f"[INFO] {message}\n")

    def error(self, message: str) -> None:
        self.write(f"[ERROR] {message}\n")

    def close(self) -> None:
        """Store everything written so far, including a last line without newline."""
        with self._cond:
            if self._pending:
                self._lines.append(self._pending + "\n")
                self._pending = ""
            self._closed = True
            self._cond.notify()
        self._flusher.join(timeout=30)
        self._flush()  # in case the flusher died

    # --- flushing -----------------------------------------------------------------
    def _flush_loop(self) -> None:
        period = settings.ACC_LOG_FLUSH_SECONDS
        try:
            while True:
                with self._cond:
                    while not self._lines and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        break
                    while not self._closed and self._size < _FLUSH_BYTES:
                        remaining = self._first_pending_at + period - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                self._flush()
            self._flush()
        finally:
            connection.close()  # this thread's own database connection

    def _flush(self) -> None:
        with self._flush_lock:
            with self._cond:
                if not self._lines:
                    return
                text = mask("".join(self._lines), self.secrets)
                self._lines, self._size = [], 0
            self._seq += 1
            _save(self.job_id, self._seq, text)
            self._total += len(text)
            if self._total > settings.ACC_LOG_MAX_BYTES:
                self._keep_tail()

    def _keep_tail(self) -> None:
        """Past ACC_LOG_MAX_BYTES the oldest chunks go; the newest are what people need."""
        excess = self._total - settings.ACC_LOG_MAX_BYTES
        removed, ids = 0, []
        for pk, size in LogChunk.objects.filter(job_id=self.job_id).order_by("seq").values_list("pk", "text"):
            if removed >= excess:
                break
            removed += len(size)
            ids.append(pk)
        LogChunk.objects.filter(pk__in=ids).delete()
        Job.objects.filter(pk=self.job_id).update(log_bytes=F("log_bytes") - removed)
        self._total -= removed


def append(job_id: int, text: str, *, empty: bool = False) -> None:
    """Store `text` as the job's next chunk now: a platform message about a job no worker runs (a job answered
    from the build cache). A job being run writes through its LogWriter instead. `empty`: the job has no log yet."""
    seq = 1 if empty else (LogChunk.objects.filter(job_id=job_id).aggregate(m=Max("seq"))["m"] or 0) + 1
    _save(job_id, seq, text if text.endswith("\n") else text + "\n")


def _save(job_id: int, seq: int, text: str) -> None:
    """The one place a LogChunk row is written: saved first, then counted, then broadcast."""
    LogChunk.objects.create(job_id=job_id, seq=seq, text=text)
    Job.objects.filter(pk=job_id).update(log_bytes=F("log_bytes") + len(text))
    events.job_log_appended(job_id, seq, text)


def pump(source: Iterator[bytes], writer: LogWriter) -> threading.Thread:
    """Copy `source` into `writer` on a thread of its own; join the thread to know the stream ended."""

    def read():
        try:
            for data in source:
                writer.write(data)
        except Exception as exc:  # the engine connection can drop while a job is stopped
            writer.write(f"\n[WARN] log stream interrupted: {exc}\n")

    reader = threading.Thread(target=read, daemon=True, name=f"log-read-{writer.job_id}")
    reader.start()
    return reader

"""Turns a backend's raw output into stored, masked, ordered log chunks.

LogWriter buffers whatever is written (builder output, platform messages,
the job's own output) into whole lines, masks secret values and strips NUL
bytes. Its flusher thread saves a chunk at most every ACC_LOG_FLUSH_SECONDS
after the first pending line, so a steady stream costs a few writes a
second, not one per line. Each chunk is saved first and broadcast after, so
a client that reconnects and asks for ?after_seq= loses nothing.

A worker writes through a LogWriter while it builds, maps inputs and maps
outputs (a few jobs per worker at a time). The output of a running job is
shipped by the supervisor instead, through a `Shipper` per job: no thread,
flushed by the supervisor's own loop, and each chunk is saved with the
engine's cursor after it, so a restarted supervisor resumes exactly there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
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
        # Where the log stands is read, and the flusher started, at the first line: a writer that is given
        # nothing (a job's settling, most of the time) costs no query and no thread.
        self._seq: int | None = 0 if log_bytes == 0 else None  # a job with no log yet has no earlier chunks
        self._total = 0
        self._flusher: threading.Thread | None = None

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
                self._start_flusher()
                self._cond.notify()

    def _start_flusher(self) -> None:  # under self._cond
        if self._flusher is None and not self._closed:
            self._flusher = threading.Thread(target=self._flush_loop, daemon=True, name=f"log-flush-{self.job_id}")
            self._flusher.start()

    def info(self, message: str) -> None:
        self.write(f"[INFO] {message}\n")

    def error(self, message: str) -> None:
        self.write(f"[ERROR] {message}\n")

    def begin_close(self) -> None:
        """Have the flusher store what was written and stop, without waiting for it (`close` waits)."""
        with self._cond:
            if self._pending:
                self._lines.append(self._pending + "\n")
                self._pending = ""
            self._closed = True
            self._cond.notify()

    def close(self) -> None:
        """Store everything written so far, including a last line without newline."""
        self.begin_close()
        if self._flusher is not None:
            self._flusher.join(timeout=30)
        self._flush()  # in case the flusher died, or lines came after begin_close

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
                connection.close()  # back to the pool between chunks: a log costs no connection while idle
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
            if self._seq is None:  # the first chunk of this writer follows those already stored
                self._seq = LogChunk.objects.filter(job_id=self.job_id).aggregate(m=Max("seq"))["m"] or 0
                self._total = Job.objects.filter(pk=self.job_id).values_list("log_bytes", flat=True).first() or 0
            self._seq += 1
            _save(self.job_id, self._seq, text)
            self._total += len(text)
            if self._total > settings.ACC_LOG_MAX_BYTES:
                self._keep_tail()

    def _keep_tail(self) -> None:
        self._total = keep_tail(self.job_id, self._total)


def keep_tail(job_id: int, total: int) -> int:
    """Past ACC_LOG_MAX_BYTES the oldest chunks go; the newest are what people need. Returns the new total."""
    excess = total - settings.ACC_LOG_MAX_BYTES
    removed, ids = 0, []
    for pk, text in LogChunk.objects.filter(job_id=job_id).order_by("seq").values_list("pk", "text"):
        if removed >= excess:
            break
        removed += len(text)
        ids.append(pk)
    LogChunk.objects.filter(pk__in=ids).delete()
    Job.objects.filter(pk=job_id).update(log_bytes=F("log_bytes") - removed)
    return total - removed


class Shipper:
    """One running job's output on its way to the database, for the supervisor's single-threaded loop.

    `add` takes output with the engine's cursor after it; `take` gives the
    whole lines gathered since the last take, masked, with the cursor after
    the last whole line and the chunk's sequence number; `store` (in a
    thread that may use the database) saves it.
    """

    def __init__(self, job_id: int, *, seq: int, total: int, cursor: str, secrets: Iterable[str] = ()):
        self.job_id = job_id
        self.seq, self.total, self.cursor = seq, total, cursor
        self.secrets = [s for s in secrets if s]
        self._pending = ""  # a line not yet ended by a newline
        self._lines: list[str] = []
        self.due = 0.0  # monotonic time by which the gathered lines should be stored (0: nothing gathered)

    def add(self, data: bytes | str, cursor: str | None = None) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        text = self._pending + text.replace("\x00", "").replace("\r\n", "\n")
        *complete, self._pending = text.split("\n")
        if len(self._pending) > _FLUSH_BYTES:
            complete.append(self._pending)
            self._pending = ""
        if complete:
            if not self._lines:
                self.due = time.monotonic() + settings.ACC_LOG_FLUSH_SECONDS
            self._lines.extend(line + "\n" for line in complete)
        if cursor is not None and not self._pending:
            self.cursor = cursor  # only where a line ended: a resume never repeats a stored line

    def note(self, message: str) -> None:
        """A platform message in the job's log (e.g. the session URL, a timeout)."""
        self.add(message if message.endswith("\n") else message + "\n")

    def end(self) -> None:
        """The output ended: a last line without newline counts as a line."""
        if self._pending:
            self._lines.append(self._pending + "\n")
            self._pending = ""
            self.due = self.due or time.monotonic()

    def take(self) -> tuple[int, str, str] | None:
        if not self._lines:
            return None
        text = mask("".join(self._lines), self.secrets)
        self._lines, self.due = [], 0.0
        self.seq += 1
        self.total += len(text)
        return self.seq, text, self.cursor


def store(job_id: int, seq: int, text: str, cursor: str, *, total: int) -> int:
    """Save a chunk taken from a Shipper (with its cursor); returns the log's size after trimming."""
    _save(job_id, seq, text, cursor=cursor)
    return keep_tail(job_id, total) if total > settings.ACC_LOG_MAX_BYTES else total


def resume_point(job_id: int) -> tuple[int, int, str]:
    """(last seq, bytes stored, cursor) of a job's log, for a Shipper that takes over."""
    seq = LogChunk.objects.filter(job_id=job_id).aggregate(m=Max("seq"))["m"] or 0
    total, cursor = Job.objects.filter(pk=job_id).values_list("log_bytes", "log_cursor").first() or (0, "")
    return seq, total, cursor


def append(job_id: int, text: str, *, empty: bool = False) -> None:
    """Store `text` as the job's next chunk now: a platform message about a job no worker runs (a job answered
    from the build cache). A job being run writes through its LogWriter instead. `empty`: the job has no log yet."""
    seq = 1 if empty else (LogChunk.objects.filter(job_id=job_id).aggregate(m=Max("seq"))["m"] or 0) + 1
    _save(job_id, seq, text if text.endswith("\n") else text + "\n")


def _save(job_id: int, seq: int, text: str, *, cursor: str | None = None) -> None:
    """The one place a LogChunk row is written: saved first, then counted, then broadcast."""
    fields = {"log_bytes": F("log_bytes") + len(text)}
    if cursor is not None:
        fields["log_cursor"] = cursor
    with transaction.atomic(savepoint=False):  # the chunk, its count (and the cursor after it): all or none; one commit
        LogChunk.objects.create(job_id=job_id, seq=seq, text=text)
        Job.objects.filter(pk=job_id).update(**fields)
    events.job_log_appended(job_id, seq, text)

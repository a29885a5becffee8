"""The `local` backend's processes: whoever started a job reaps it, also when another process follows it."""

from __future__ import annotations

import random
import shutil
import time

from django.conf import settings

from backends.base import JobSpec
from backends.local import LocalBackend


def test_a_process_that_starts_local_jobs_leaves_no_zombie_when_another_follows_them():
    """A worker starts a job and the supervisor (another process) sees it end: nobody in the worker waits for
    it, yet it must not stay in the process table as a zombie (one per job a worker ever ran)."""
    backend = LocalBackend()
    first = 990_000_000 + random.randrange(1_000_000) * 10  # far above the ids the database hands out
    states = []
    for job_id in range(first, first + 3):
        host = settings.ACC_JOBS_DIR / str(job_id)
        (host / "root").mkdir(parents=True)
        spec = JobSpec(job_id=job_id, command="true", workdir="/code", host_dir=host, root_dir=host / "root")
        states.append(backend.start(spec))
    try:
        deadline = time.monotonic() + 10
        while (left := [s["pid"] for s in states if _state_of(s["pid"]) is not None]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == [], f"ended jobs still in the process table: {[(p, _state_of(p)) for p in left]}"
    finally:
        for state in states:
            backend.cleanup(state)
            shutil.rmtree(settings.ACC_JOBS_DIR / str(state["job_id"]), ignore_errors=True)


def _state_of(pid: int) -> str | None:
    """The process's state letter ("Z" for a zombie), None once it is gone; read without reaping it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None

"""The after-final work of a job, in one place: whoever ended it (its worker, a cancel, the reconciler, the
build cache) calls `job_ended` once the job's final transition succeeded."""

from __future__ import annotations

from builds import cache
from jobflows import services as flow_services
from jobs import scheduler


def job_ended(job_id: int, flow_run_id: int | None, *, keep_one: bool = False) -> int | None:
    """Jobs that joined `job_id` get its result (or run themselves), and its jobflow moves on.

    With `keep_one`, a node that became ready is not queued but returned, for
    the calling worker to run next (if its project's quota has room).
    """
    cache.release_joiners(job_id)
    ready = flow_services.advance_flow(flow_run_id, keep_one=keep_one) if flow_run_id else None
    if ready is None:
        scheduler.admit()  # its place in the window and its project's quota are free: the fair queue moves on
    # else the caller runs `ready` next, and that job's start asks for the pass (after it started)
    return ready

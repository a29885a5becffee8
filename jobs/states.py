"""The job state machine: one enum, one table of allowed moves, one writer.

`transition()` is the only code that changes Job.status. It is a
compare-and-set: an UPDATE filtered on the allowed source states, so two
actors racing (a worker finishing, a user cancelling, the reconciler) can
never both win.
"""

import functools
import logging

from django.db import models, transaction
from django.utils import timezone


class Status(models.TextChoices):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    BUILDING = "BUILDING"
    MAPPING_INPUTS = "MAPPING_INPUTS"
    RUNNING = "RUNNING"
    MAPPING_OUTPUTS = "MAPPING_OUTPUTS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"  # a jobflow node whose upstream did not succeed


CANCELLED_MESSAGE = "Cancelled on request."  # what a job cancelled by a person says, wherever it ended

FINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT, Status.SKIPPED})
UNSUCCESSFUL = frozenset(FINAL - {Status.SUCCEEDED})
ACTIVE = frozenset({Status.BUILDING, Status.MAPPING_INPUTS, Status.RUNNING, Status.MAPPING_OUTPUTS})

_ANY_LIVE = {Status.PENDING, Status.QUEUED, *ACTIVE}

# to-state -> states it may be entered from
ALLOWED_FROM: dict[str, frozenset[str]] = {
    # FAILED/CANCELLED -> QUEUED only for a jobflow's root, re-opened by a retry
    Status.QUEUED: frozenset({Status.PENDING, Status.FAILED, Status.CANCELLED}),
    Status.BUILDING: frozenset({Status.QUEUED}),
    Status.MAPPING_INPUTS: frozenset({Status.QUEUED, Status.BUILDING}),
    # QUEUED -> RUNNING only for a jobflow's root, once its first node runs
    Status.RUNNING: frozenset({Status.MAPPING_INPUTS, Status.QUEUED}),
    Status.MAPPING_OUTPUTS: frozenset({Status.RUNNING}),
    # PENDING/QUEUED -> SUCCEEDED: a job answered from the build-system cache at dispatch, which runs nothing;
    # BUILDING/MAPPING_INPUTS -> SUCCEEDED: one its worker answered from the cache before starting anything
    Status.SUCCEEDED: frozenset(
        {Status.MAPPING_OUTPUTS, Status.QUEUED, Status.PENDING, Status.BUILDING, Status.MAPPING_INPUTS}
    ),
    Status.FAILED: frozenset(_ANY_LIVE),
    Status.CANCELLED: frozenset(_ANY_LIVE),
    Status.TIMED_OUT: frozenset({Status.BUILDING, Status.RUNNING, Status.MAPPING_OUTPUTS}),
    Status.SKIPPED: frozenset({Status.PENDING}),
}

# the timestamp field stamped when a state is entered
STAMP = {
    Status.QUEUED: "queued_at",
    Status.BUILDING: "building_at",
    Status.MAPPING_INPUTS: "mapping_inputs_at",
    Status.RUNNING: "running_at",
    Status.MAPPING_OUTPUTS: "mapping_outputs_at",
    Status.SUCCEEDED: "finished_at",
    Status.FAILED: "finished_at",
    Status.CANCELLED: "finished_at",
    Status.TIMED_OUT: "finished_at",
    Status.SKIPPED: "finished_at",
}


def transition(job_id: int, to: str, *, reason: str = "", **fields) -> bool:
    """Move job `job_id` to `to` if its current state allows it.

    Extra `fields` are written in the same UPDATE. Returns False when no row
    changed: the job was already moved by somebody else.
    """
    from jobs.models import Job, JobEvent

    to = Status(to)
    now = timezone.now()
    values = {"status": to, "status_changed_at": now, **fields}
    stamp = STAMP.get(to)
    if stamp:
        values.setdefault(stamp, now)
    if to in ACTIVE:
        values.setdefault("heartbeat_at", now)
    with transaction.atomic(savepoint=False):
        changed = Job.objects.filter(pk=job_id, status__in=ALLOWED_FROM[to]).update(**values)
        if not changed:
            return False
        JobEvent.objects.create(job_id=job_id, status=to, reason=reason[:2000], created_at=now)
        transaction.on_commit(lambda: _announce(job_id, to, reason))
    return True


def command_started(job_id: int, at) -> bool:
    """A RUNNING job whose command the engine started after the move (a pod that waited for its node): its
    RUNNING time becomes when the command started. False when it is no longer RUNNING."""
    from jobs.models import Job

    return bool(Job.objects.filter(pk=job_id, status=Status.RUNNING).update(running_at=at))


def _announce(job_id: int, status: str, reason: str) -> None:
    """Publish the move (after commit), with the jobflow run the job belongs to, if any.

    A failure here (or in the channel layer) only costs a live event, never the job.
    """
    from jobs import events

    try:
        run, node = _run_of(job_id)
    except LookupError:
        return  # deleted meanwhile: nobody can be watching it
    except Exception:
        logging.getLogger(__name__).warning("could not find the run of job %s", job_id, exc_info=True)
        run, node = None, ""
    events.job_status_changed(job_id, status, reason, run=run, node=node)


@functools.lru_cache(maxsize=4096)
def _run_of(job_id: int) -> tuple[int | None, str]:
    """(root of the job's jobflow run, its node key), fixed for a job's life: one indexed query per job and
    process, not one per move. A jobflow's root is its own run."""
    from jobs.models import Job

    row = Job.objects.filter(pk=job_id).values_list("flow_run__root_id", "node_key", "routine_version_id").first()
    if row is None:
        raise LookupError(job_id)  # not cached
    root_id, node_key, version_id = row
    if root_id is not None:
        return root_id, node_key
    return (job_id if version_id is None else None), ""

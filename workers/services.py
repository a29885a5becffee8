"""Running jobs: execute one in a worker, cancel, the after-final work, and the reconciler."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accelerator.celery import app as celery_app
from accelerator.errors import Forbidden
from backends import get_backend
from builds import cache
from jobflows import services as flow_services
from jobs import backend_spec, permissions, scheduler
from jobs.models import Job
from jobs.states import ACTIVE, CANCELLED_MESSAGE, FINAL, Status, transition
from workers import supervisor
from workers.ending import job_ended
from workers.runner import JobRunner

log = logging.getLogger(__name__)

CANCEL_ORPHAN_TASK = "workers.tasks.cancel_orphan_task"


def execute_job(job_id: int) -> None:
    """Start a queued job; returns once it runs (the supervisor follows it) or ended before it could. Returns at
    once if it is not QUEUED any more.

    When a jobflow node ends and its child becomes ready, this worker slot is
    free: it goes straight on with the child (admitted by
    jobs.scheduler.admit_now when its project's quota has room) instead of
    waiting for the queue to deliver it. A duplicate start message is
    harmless: whichever claims the job first (compare-and-set) runs it. A job
    still waiting in the fair queue (not admitted) is never run.
    """
    _go_on(job_id)


def finish_job(job_id: int, ended: dict) -> None:
    """The supervisor saw a running job end: map its outputs and settle it (see JobRunner.finish); then go on
    with a jobflow child that became ready."""
    job = _load(job_id)
    if job is not None and job.status == Status.RUNNING:
        runner = JobRunner(job)
        try:
            _go_on(runner.finish(ended))  # the child that became ready starts first...
        finally:
            runner.tidy_up()  # ...then this node's container and folder go


def _load(job_id: int) -> Job | None:
    job = Job.objects.select_related("routine_version__routine", "project", "flow_run").filter(pk=job_id).first()
    return None if job is None or job.routine_version_id is None else job  # a jobflow's root runs nothing


def _go_on(next_id: int | None) -> None:
    while next_id is not None:
        job = _load(next_id)
        if job is None or job.status != Status.QUEUED or job.admitted_at is None:
            scheduler.admit()  # it was to ask for the pass once it started (workers.ending.job_ended)
            return  # gone, taken, or still waiting in the fair queue
        next_id = JobRunner(job).run()


def cancel_job(*, job: Job, user) -> Job:
    """Ask a job to stop. A job not started yet ends at once; a running one within seconds.

    Cancelling a jobflow's root cancels every node that has not finished.
    """
    if not permissions.can_cancel_job(user, job):
        raise Forbidden("Only the job's owner or a maintainer of its project can cancel it.")
    if job.status in FINAL:
        return job  # cancelling a finished job changes nothing
    reason = f"cancelled by {user}"
    Job.objects.filter(pk=job.pk, cancel_requested_at__isnull=True).update(cancel_requested_at=timezone.now())
    flow_id = job.flow_run_id
    if job.routine_version_id is None:  # a jobflow's root
        flow_id = job.flow.pk
        for node in Job.objects.filter(flow_run_id=flow_id).exclude(status__in=FINAL):
            Job.objects.filter(pk=node.pk, cancel_requested_at__isnull=True).update(cancel_requested_at=timezone.now())
            _cancel_one(node, reason)
    else:
        _cancel_one(job, reason)
    if flow_id:
        flow_services.advance_flow(flow_id)
    job.refresh_from_db()
    return job


def _cancel_one(job: Job, reason: str) -> None:
    if job.status in (Status.PENDING, Status.QUEUED) and transition(
        job.pk, Status.CANCELLED, reason=reason, error_code="cancelled", message=CANCELLED_MESSAGE
    ):
        job_ended(job.pk, None)  # its flow, if any, moves on once, in cancel_job
        return
    # A running job's worker sees the request within ACC_CANCEL_CHECK_EVERY and stops it; the request itself
    # never talks to the engine. A job nobody watches any more is stopped and settled by a worker task.
    job.refresh_from_db()
    if job.status == Status.RUNNING:
        backend = job.backend
        transaction.on_commit(lambda: supervisor.nudge(backend))
    if job.status in ACTIVE and _worker_gone(job):
        job_id = job.pk
        transaction.on_commit(lambda: celery_app.send_task(CANCEL_ORPHAN_TASK, args=(job_id,)))


def cancel_orphan(job_id: int) -> None:
    """In a worker: stop and settle a cancelled job whose own worker stopped answering."""
    job = Job.objects.filter(pk=job_id, status__in=ACTIVE).first()
    if job is not None and _worker_gone(job):
        _settle_orphan(job, Status.CANCELLED, CANCELLED_MESSAGE, error_code="cancelled")


def _worker_gone(job: Job) -> bool:
    """Whether the worker in one of the job's working phases stopped answering. A RUNNING job has no worker:
    the supervisor follows it (and acts on its cancel request, also after its own restart)."""
    if job.status == Status.RUNNING:
        return False
    stale = timezone.now() - timedelta(seconds=settings.ACC_HEARTBEAT_TIMEOUT)
    return job.heartbeat_at is None or job.heartbeat_at < stale


def _settle_orphan(job: Job, status: str, message: str, *, error_code: str) -> bool:
    backend = get_backend(job.backend or None)
    try:
        if job.backend_state:
            backend.stop(job.backend_state, grace=1)
            backend.cleanup(job.backend_state)
        if not job.flow_run_id:
            backend.remove_pipe(backend_spec.pipe_name(job))
    except Exception:
        log.warning("could not clean up job %s", job.pk, exc_info=True)
    moved = transition(job.pk, status, reason=message, error_code=error_code, message=message)
    if moved:
        job_ended(job.pk, job.flow_run_id)
    return moved


def reconcile_jobs() -> dict:
    """Settle jobs whose worker died in a working phase, re-send lost queue messages, remove leftovers.

    Run periodically by Celery beat. RUNNING jobs are not its business: the
    supervisor follows them and adopts them again after a restart. What only
    the reconciler sees: a worker that died while it built, mapped inputs or
    mapped outputs, and containers or processes whose job is over.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.ACC_HEARTBEAT_TIMEOUT)
    settled = adopted = 0
    working = ACTIVE - {Status.RUNNING}
    for job in Job.objects.filter(status__in=working, heartbeat_at__lt=stale):
        if job.status == Status.MAPPING_INPUTS and _hand_to_supervisor(job):
            adopted += 1  # its worker died just after it started the job: it runs, the supervisor follows it
            continue
        message = "The worker running this job stopped responding; the job was stopped. Dispatch it again."
        settled += _settle_orphan(job, Status.FAILED, message, error_code="worker_lost")
    resend_before = now - timedelta(seconds=settings.ACC_QUEUE_RESEND_AFTER)
    resent = 0
    lost = Job.objects.filter(status=Status.QUEUED, admitted_at__lt=resend_before, routine_version__isnull=False)
    for job_id in lost.values_list("pk", flat=True):
        scheduler.send_start(job_id)  # the runner's compare-and-set makes a duplicate harmless
        resent += 1
    admitted = scheduler.admit()  # jobs still in the fair queue only need a pass (a backoff ran out, a lost one)
    removed = _remove_leftovers()
    joiners = cache.release_stale_joiners()
    return {
        "settled": settled,
        "adopted": adopted,
        "resent": resent,
        "admitted": admitted,
        "removed": removed,
        "pipes": flow_services.remove_stale_pipes(),
        "joined": joiners,
    }


def _hand_to_supervisor(job: Job) -> bool:
    """A job whose worker died between starting it on the backend and marking it RUNNING: it runs (or ran)
    there, so it is marked RUNNING with the state found on the backend and the supervisor adopts it, instead
    of being failed and run again."""
    backend = get_backend(job.backend or None)
    try:
        state = backend.started_state(job.pk)
    except Exception:
        log.warning("cannot look for job %s on backend %s", job.pk, backend.name, exc_info=True)
        return False
    reason = "started by a worker that was lost; the supervisor follows it"
    if state is None or not transition(job.pk, Status.RUNNING, reason=reason, backend_state=state):
        return False
    supervisor.announce(job.pk, backend.name)
    return True


def _remove_leftovers() -> int:
    backend = get_backend()
    try:
        ids = backend.running_job_ids()
    except Exception:
        log.warning("cannot list jobs on backend %s", backend.name, exc_info=True)
        return 0
    finished = set(Job.objects.filter(pk__in=ids, status__in=FINAL).values_list("pk", flat=True))
    finished |= ids - set(Job.objects.filter(pk__in=ids).values_list("pk", flat=True))
    for job_id in finished:
        backend.stop_by_id(job_id)
    return len(finished)

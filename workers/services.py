"""Job lifecycle services: submit, execute (in a worker), cancel, reconcile."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accelerator.crypto import encrypt_json
from accelerator.errors import Forbidden, InvalidInput
from routines import permissions
from workers import cache, interactive
from workers.backends import get_backend
from workers.models import Job, JobEvent
from workers.states import ACTIVE, FINAL, Status, transition

log = logging.getLogger(__name__)


def new_job(
    *,
    version,
    user,
    conf: dict,
    secrets: dict,
    resources: dict,
    force_build: bool = False,
    status: str = Status.QUEUED,
    flow_run=None,
    node_key: str = "",
    project=None,
) -> Job:
    """An unsaved job in its first state: QUEUED when it can run now, PENDING when it waits for others.

    The job runs in `project` (default: its routine's). A hosted model's run
    lives in the launcher's project, whose files it reads and writes.
    """
    timeout = int(resources.get("timeout") or settings.ACC_DEFAULT_TIMEOUT)
    if not 1 <= timeout <= settings.ACC_MAX_TIMEOUT:
        raise InvalidInput(f"timeout must be between 1 and {settings.ACC_MAX_TIMEOUT} seconds, got {timeout}.")
    interactive.check_dispatch(user=user, conf=conf)
    now = timezone.now()
    return Job(
        project=project or version.routine.project,
        routine_version=version,
        user=user,
        name=version.routine.name,
        status=status,
        status_changed_at=now,
        queued_at=now if status == Status.QUEUED else None,
        conf=conf,
        secrets_encrypted=encrypt_json(secrets) if secrets else None,
        force_build=force_build,
        timeout=timeout,
        flow_run=flow_run,
        node_key=node_key,
        **{k: v for k, v in resources.items() if k != "timeout" and v is not None},
    )


def save_new(job: Job, *, reason: str) -> Job:
    with transaction.atomic(savepoint=False):
        if interactive.socket_of(job.conf) is not None:  # the session cap, checked again under a lock
            interactive.check_dispatch(user=job.user, conf=job.conf, lock=True)
        job.save(force_insert=True)
        JobEvent.objects.create(job=job, status=job.status, reason=reason, created_at=job.status_changed_at)
    return job


def create_job(*, reason: str = "", **fields) -> Job:
    job = new_job(**fields)
    return save_new(job, reason=reason or f"submitted by {job.user}")


def submit_job(
    *, version, user, conf: dict, secrets: dict, resources: dict, force_build: bool = False, project=None
) -> Job:
    """Create a job for `version`: answered from the cache, joined to an identical running job, or queued."""
    job = new_job(
        version=version,
        user=user,
        conf=conf,
        secrets=secrets,
        resources=resources,
        force_build=force_build,
        project=project,
    )
    decision = cache.lookup(job)
    for field, value in decision.fields().items():
        setattr(job, field, value)
    reason = f"submitted by {user}"
    if decision.live is not None:
        job.status, job.queued_at, job.reused_from = Status.PENDING, None, decision.live
        reason += f"; waits for identical job #{decision.live.pk}"
    save_new(job, reason=reason)
    if decision.origin is not None and cache.settle_reused(
        job, decision.origin, document=decision.document, key=decision.key
    ):
        job.refresh_from_db()
    elif decision.live is not None:
        live_id = decision.live.pk
        transaction.on_commit(lambda: cache.release_joiners(live_id))  # it may have ended meanwhile
    else:
        transaction.on_commit(lambda: enqueue(job.pk))
    return job


def enqueue(job_id: int, *, delay: float = 0) -> None:
    from workers.tasks import run_job_task

    if delay > 0:
        run_job_task.apply_async((job_id,), countdown=delay)
    else:
        run_job_task.delay(job_id)


def next_attempt(job: Job, *, status: str, reason: str) -> Job:
    """A new job for the same jobflow node: same version, conf, secrets and resources; attempt + 1."""
    now = timezone.now()
    job = Job.objects.get(pk=job.pk)  # the caller may hold a partly loaded row
    fields = {f.name: getattr(job, f.name) for f in Job._meta.concrete_fields if f.name in _ATTEMPT_FIELDS}
    clone = Job.objects.create(
        **fields,
        attempt=job.attempt + 1,
        status=status,
        status_changed_at=now,
        queued_at=now if status == Status.QUEUED else None,
    )
    JobEvent.objects.create(job=clone, status=status, reason=reason, created_at=now)
    return clone


_ATTEMPT_FIELDS = {
    "project",
    "routine_version",
    "user",
    "name",
    "conf",
    "secrets_encrypted",
    "force_build",
    "required_cores",
    "required_ram",
    "required_storage_local",
    "required_storage_workflow",
    "timeout",
    "flow_run",
    "node_key",
}


def execute_job(job_id: int) -> None:
    """Run a queued job to its end. Returns at once if it is not QUEUED any more.

    When a jobflow node ends and its child becomes ready, this worker slot is
    free: it goes straight on with the child instead of waiting for the queue
    to deliver it. The child's queue message still goes out; whichever claims
    the job first (compare-and-set) runs it, the other returns at once.
    """
    from workers.runner import JobRunner

    next_id: int | None = job_id
    while next_id is not None:
        job = Job.objects.select_related("routine_version__routine", "project", "flow_run").filter(pk=next_id).first()
        if job is None or job.status != Status.QUEUED or job.routine_version_id is None:
            return  # gone, taken, or a jobflow's root (which runs nothing)
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
        from jobflows.services import advance_flow

        advance_flow(flow_id)
    job.refresh_from_db()
    return job


def _cancel_one(job: Job, reason: str) -> None:
    if job.status in (Status.PENDING, Status.QUEUED) and transition(
        job.pk, Status.CANCELLED, reason=reason, error_code="cancelled", message="Cancelled on request."
    ):
        cache.release_joiners(job.pk)
        return
    job.refresh_from_db()
    if job.status in ACTIVE:
        stop_backend(job)
        if _worker_gone(job):  # nobody will settle it: do it here
            _settle_orphan(job, Status.CANCELLED, "Cancelled on request.", error_code="cancelled")


def stop_backend(job: Job) -> None:
    """Ask the backend to stop the job's process now (TERM, KILL after the grace); failures are only logged."""
    if not job.backend_state:
        return
    try:
        get_backend(job.backend or None).stop(job.backend_state, grace=settings.ACC_STOP_GRACE)
    except Exception:
        log.warning("could not stop job %s on %s", job.pk, job.backend, exc_info=True)


def _worker_gone(job: Job) -> bool:
    stale = timezone.now() - timedelta(seconds=settings.ACC_HEARTBEAT_TIMEOUT)
    return job.heartbeat_at is None or job.heartbeat_at < stale


def _settle_orphan(job: Job, status: str, message: str, *, error_code: str) -> bool:
    backend = get_backend(job.backend or None)
    try:
        if job.backend_state:
            backend.stop(job.backend_state, grace=1)
            backend.cleanup(job.backend_state)
        if not job.flow_run_id:
            backend.remove_pipe(f"acc-pipe-job-{job.pk}")
    except Exception:
        log.warning("could not clean up job %s", job.pk, exc_info=True)
    moved = transition(job.pk, status, reason=message, error_code=error_code, message=message)
    if moved:
        cache.release_joiners(job.pk)
    if moved and job.flow_run_id:
        from jobflows.services import advance_flow

        advance_flow(job.flow_run_id)
    return moved


def reconcile_jobs() -> dict:
    """Settle jobs whose worker died, re-send lost queue messages, remove leftovers.

    Run periodically by Celery beat. A job is never left RUNNING forever and
    no container outlives its job.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.ACC_HEARTBEAT_TIMEOUT)
    settled = 0
    for job in Job.objects.filter(status__in=ACTIVE, heartbeat_at__lt=stale):
        message = "The worker running this job stopped responding; the job was stopped. Dispatch it again."
        settled += _settle_orphan(job, Status.FAILED, message, error_code="worker_lost")
    resend_before = now - timedelta(seconds=settings.ACC_QUEUE_RESEND_AFTER)
    resent = 0
    lost = Job.objects.filter(status=Status.QUEUED, queued_at__lt=resend_before, routine_version__isnull=False)
    for job_id in lost.values_list("pk", flat=True):
        enqueue(job_id)  # the runner's compare-and-set makes a duplicate harmless
        resent += 1
    removed = _remove_leftovers()
    from jobflows.services import remove_stale_pipes

    joiners = cache.release_stale_joiners()
    return {"settled": settled, "resent": resent, "removed": removed, "pipes": remove_stale_pipes(), "joined": joiners}


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

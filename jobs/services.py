"""Making job records: a new job, its first save, the next attempt of a jobflow node, and queueing one."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accelerator.crypto import encrypt_json
from accelerator.errors import InvalidInput
from jobs import quotas, scheduler, sessions
from jobs.models import Job, JobEvent
from jobs.states import Status


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
    check_quota: bool = True,
) -> Job:
    """An unsaved job in its first state: QUEUED when it can run now, PENDING when it waits for others.

    The job runs in `project` (default: its routine's). A hosted model's run
    lives in the launcher's project, whose files it reads and writes. A job its project's quota could never
    start is refused, unless the caller checks that later (`check_quota=False`).
    """
    timeout = int(resources.get("timeout") or settings.ACC_DEFAULT_TIMEOUT)
    if not 1 <= timeout <= settings.ACC_MAX_TIMEOUT:
        raise InvalidInput(f"timeout must be between 1 and {settings.ACC_MAX_TIMEOUT} seconds, got {timeout}.")
    sessions.check_dispatch(user=user, conf=conf)
    project = project or version.routine.project
    if check_quota:
        quotas.refuse_if_never_fits(
            project=project, cores=resources.get("required_cores"), ram=resources.get("required_ram")
        )
    now = timezone.now()
    return Job(
        project=project,
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
        if sessions.socket_of(job.conf) is not None:  # the session cap, checked again under a lock
            sessions.check_dispatch(user=job.user, conf=job.conf, lock=True)
        job.save(force_insert=True)
        JobEvent.objects.create(job=job, status=job.status, reason=reason, created_at=job.status_changed_at)
    return job


def create_job(*, reason: str = "", **fields) -> Job:
    job = new_job(**fields)
    return save_new(job, reason=reason or f"submitted by {job.user}")


def enqueue(job_id: int, *, delay: float = 0, project_id: int | None = None) -> int:
    """A QUEUED job joins the fair queue (jobs.scheduler), which sends its start task when its turn comes.

    With `delay` (a retry's backoff) it is not admitted before then
    (`start_after`, unless already set) and a pass is asked for at that time.
    With its `project_id`, a job alone in the queue is admitted in one statement (no quota applies then).
    Returns how many jobs were admitted at once (0 inside a transaction, but for that one statement).
    """
    if delay > 0:
        start_after = timezone.now() + timedelta(seconds=delay)
        Job.objects.filter(pk=job_id, admitted_at__isnull=True, start_after__isnull=True).update(
            start_after=start_after, wait_reason=_backoff_reason(start_after)
        )
        scheduler.admit_later(delay)
        return 0
    if project_id is not None:
        return scheduler.admit_new(job_id, project_id)
    return scheduler.admit()


def _backoff_reason(start_after) -> str:
    return f"waiting for its retry backoff, until {start_after:%Y-%m-%d %H:%M:%S} UTC"


def next_attempt(job: Job, *, status: str, reason: str, delay: float = 0) -> Job:
    """A new job for the same jobflow node: same version, conf, secrets and resources; attempt + 1.

    With `delay` it is not admitted to run before that many seconds from now.
    """
    now = timezone.now()
    job = Job.objects.get(pk=job.pk)  # the caller may hold a partly loaded row
    fields = {f.name: getattr(job, f.name) for f in Job._meta.concrete_fields if f.name in _ATTEMPT_FIELDS}
    clone = Job.objects.create(
        **fields,
        attempt=job.attempt + 1,
        status=status,
        status_changed_at=now,
        queued_at=now if status == Status.QUEUED else None,
        start_after=now + timedelta(seconds=delay) if delay > 0 else None,
        wait_reason=_backoff_reason(now + timedelta(seconds=delay)) if delay > 0 else "",
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
    "priority",
    "flow_run",
    "node_key",
}

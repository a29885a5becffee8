"""The fair queue: which QUEUED jobs get their start task sent, and when.

A QUEUED job first waits here (`admitted_at` empty). A pass (`admit`)
sends start tasks while fewer than `ACC_START_WINDOW` admitted jobs wait for
a worker to pick them up, in this order: higher `priority` first; within a
priority the projects take turns (the one with fewest jobs in use first,
ties by whose last admission is oldest), within a project its users the same
way, and each user's oldest job first. A job whose project's quota
(jobs.quotas) has no room stays, with a `wait_reason` the API and the job
page show; later jobs of that project wait behind it (no overtaking, so big
jobs are never starved by small ones).

Passes are serialised by a lock in Django's cache (Redis); a pass asked for
while another runs sets a flag and the running one goes round once more, so
nothing waits on the lock and nothing is admitted twice. Callers: enqueue
(new and released jobs), job_ended (a slot or quota came free), the worker
after it claims a job (a window slot came free), the reconciler, and
`admit_task` for retries whose backoff ran out.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accelerator.celery import app as celery_app
from jobs import quotas
from jobs.models import Job, Quota
from jobs.states import Status
from routines.models import Project

log = logging.getLogger(__name__)

RUN_JOB_TASK = "workers.tasks.run_job_task"  # defined by workers.tasks; routed to the "jobs" queue by settings
ADMIT_TASK = "jobs.tasks.admit_task"
START_PRIORITY = 3  # a step of kombu's Redis transport (0, 3, 6, 9; 0 is taken first)

WINDOW_REASON = "waiting for a free worker slot"
LOCK_KEY, DIRTY_KEY = "scheduler:pass", "scheduler:again"
LOCK_TTL = 60  # s; a pass takes milliseconds, the timeout only frees the lock of a process that died holding it
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def waiting(now=None):
    """Jobs in the fair queue that may be admitted now."""
    now = now or timezone.now()
    return Job.objects.filter(status=Status.QUEUED, admitted_at__isnull=True, routine_version__isnull=False).filter(
        Q(start_after__isnull=True) | Q(start_after__lte=now)
    )


def admit() -> int:
    """Admit what the window, the order and the quotas allow. Returns how many jobs this call admitted.

    Inside a transaction it runs once that commits (a pass must see and
    publish committed rows). Costs one query when nothing waits, and no lock when a lone job waits and
    nothing limits it.
    """
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(admit)
        return 0
    first = list(waiting().values_list("pk", "project_id")[:2])
    if not first:
        return 0
    if len(first) == 1 and _admit_alone(*first[0]):
        return 1
    token = secrets.token_hex(8)
    if not _acquire(token):
        _flag_again()  # the pass running now goes round once more
        if not _acquire(token):
            return 0
    admitted = 0
    while True:
        try:
            _clear_again()
            admitted += _pass()
        finally:
            _release(token)
        if not _again() or not _acquire(token):
            return admitted


def admit_new(job_id: int, project_id: int) -> int:
    """A job just queued: admitted in one statement when it is the only one waiting, no quota applies to its
    project and the window has room (what a pass would do, in one round trip instead of four); otherwise
    a pass. Returns how many jobs were admitted.

    Inside the transaction that creates the job, that statement joins it (one commit, not two: a commit waits
    for the disk) and the start task is sent once it commits; a pass, when needed, runs after the commit."""
    if transaction.get_connection().in_atomic_block:
        if _admit_alone_now(job_id, project_id):
            transaction.on_commit(lambda: _started(job_id))
            return 1
        transaction.on_commit(admit)
        return 0
    if _admit_alone_now(job_id, project_id):
        _started(job_id)
        return 1
    return admit()


def _started(job_id: int) -> None:
    send_start(job_id)
    log.info("admitted 1 job(s): [%s]", job_id)


def _admit_alone_now(job_id: int, project_id: int) -> bool:
    """The one statement of `admit_new`: admit `job_id` if it may start now, nothing else waits, no quota applies
    to its project and the window has room. Written out in SQL: it runs on every dispatch, and composing it
    with the ORM cost more than running it."""
    window = settings.ACC_START_WINDOW
    if window <= 0:
        return False
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_ALONE_SQL, [now, job_id, now, now, job_id, project_id, window - 1])
        return cursor.rowcount > 0


_JOB, _QUOTA = Job._meta.db_table, Quota._meta.db_table
_QUEUED = f"status = '{Status.QUEUED.value}' AND routine_version_id IS NOT NULL"
_ALONE_SQL = f"""
    UPDATE {_JOB} SET admitted_at = %s, wait_reason = ''
    WHERE id = %s AND {_QUEUED} AND admitted_at IS NULL AND (start_after IS NULL OR start_after <= %s)
    AND NOT EXISTS (
        SELECT 1 FROM {_JOB} WHERE {_QUEUED} AND admitted_at IS NULL AND (start_after IS NULL OR start_after <= %s)
        AND id <> %s)
    AND NOT EXISTS (SELECT 1 FROM {_QUOTA} WHERE project_id = %s OR project_id IS NULL)
    AND NOT EXISTS (SELECT 1 FROM {_JOB} WHERE {_QUEUED} AND admitted_at IS NOT NULL OFFSET %s LIMIT 1)
"""


def admit_now(job_id: int, *, project_id: int | None = None) -> bool:
    """Admit `job_id` for the calling worker to run itself, if its project's quota has room (the window aside).

    Nothing is sent: the caller runs the job. When it does not fit (or the
    scheduler is busy) it stays in the fair queue with its reason and False
    is returned.
    """
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(admit)
        return False
    if _admit_unlimited(job_id, project_id):
        return True
    token = secrets.token_hex(8)
    for _ in range(20):  # a pass takes a few milliseconds
        if _acquire(token):
            break
        time.sleep(0.005)
    else:
        _flag_again()
        admit()
        return False
    try:
        with transaction.atomic():
            ok = _admit_one(job_id)
    finally:
        _release(token)
    if _again():
        admit()
    return ok


def send_start(job_id: int) -> None:
    """Send the start task of an admitted job (again, for the reconciler); a duplicate is harmless.

    Start tasks go at a lower priority than the supervisor's finish tasks (the default, 0: first on Redis), so
    that in a burst a job that ended is settled, and its jobflow child started, before more jobs are started."""
    celery_app.send_task(RUN_JOB_TASK, args=(job_id,), priority=START_PRIORITY)


def admit_later(delay: float) -> None:
    """Ask for a pass in `delay` seconds (a retry's backoff runs out then)."""
    celery_app.send_task(ADMIT_TASK, countdown=max(0.0, delay) + 0.05)


# --- one pass -----------------------------------------------------------------------------------------------------
def _pass() -> int:
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            waiting(now)
            .order_by("-priority", "queued_at", "pk")
            .values_list("pk", "project_id", "user_id", "priority", "required_cores", "required_ram", "wait_reason")
        )
        if not rows:
            return 0
        project_ids = {row[1] for row in rows}
        free = _window_free()
        usage = quotas.usage_of(project_ids)
        limits = quotas.quotas_for(project_ids)
        slugs = _Slugs(limits)

        # priority -> project -> user -> that user's jobs, oldest first
        queues: dict[int, dict[int, dict[int, deque]]] = {}
        for row in rows:
            queues.setdefault(row[3], {}).setdefault(row[1], {}).setdefault(row[2], deque()).append(row)

        admitted: list[int] = []
        blocked: dict[int, str] = {}  # project -> why its next job cannot start
        stamp = 0
        for priority in sorted(queues, reverse=True):
            projects = queues[priority]
            while free > 0:
                ready = [p for p, users in projects.items() if users and p not in blocked]
                if not ready:
                    break
                pid = min(ready, key=lambda p: _turn(usage[p], min(q[0][0] for q in projects[p].values())))
                users = projects[pid]
                uid = min(users, key=lambda u: _turn(usage[pid].users.get(u), users[u][0][0]))
                job = users[uid][0]
                reason = quotas.blocking_reason(
                    limits.get(pid), usage[pid], cores=job[4], ram=job[5], slug=slugs.get(pid)
                )
                if reason:
                    blocked[pid] = reason
                    continue
                users[uid].popleft()
                if not users[uid]:
                    del users[uid]
                stamp += 1
                last = now + timedelta(microseconds=stamp)  # later in this pass = admitted more recently
                usage[pid].add(jobs=1, cores=job[4], ram=job[5], last=last)
                usage[pid].users.setdefault(uid, quotas.Usage()).add(jobs=1, cores=job[4], ram=job[5], last=last)
                admitted.append(job[0])
                free -= 1

        if admitted:
            Job.objects.filter(pk__in=admitted, status=Status.QUEUED, admitted_at__isnull=True).update(
                admitted_at=now, wait_reason=""
            )
            transaction.on_commit(lambda: [send_start(pk) for pk in admitted])
        _write_reasons(queues, blocked, usage, limits, slugs)
    if admitted:
        log.info("admitted %d job(s): %s", len(admitted), admitted)
    return len(admitted)


def _turn(usage: quotas.Usage | None, oldest_id: int) -> tuple:
    """Sort key of a project (or a user): fewest jobs in use, then admitted longest ago, then oldest job."""
    if usage is None:
        return (0, _EPOCH, oldest_id)
    return (usage.jobs, usage.last_admitted or _EPOCH, oldest_id)


def _write_reasons(queues, blocked, usage, limits, slugs) -> None:
    """Set the wait reason of every job left waiting, one UPDATE per distinct reason, only where it changes."""
    changes: dict[str, list[int]] = {}
    for projects in queues.values():
        for pid, users in projects.items():
            for jobs in users.values():
                for pk, _p, _u, _prio, cores, ram, current in jobs:
                    own = quotas.blocking_reason(limits.get(pid), usage[pid], cores=cores, ram=ram, slug=slugs.get(pid))
                    reason = (own or blocked.get(pid) or WINDOW_REASON)[:300]
                    if reason != current:
                        changes.setdefault(reason, []).append(pk)
    for reason, ids in changes.items():
        Job.objects.filter(pk__in=ids, admitted_at__isnull=True).update(wait_reason=reason)


class _Slugs:
    """Project slugs for the reasons, looked up once and only for projects that have a quota."""

    def __init__(self, limits: dict):
        self.ids = set(limits)
        self.slugs: dict[int, str] | None = None

    def get(self, pid: int) -> str:
        if pid not in self.ids:
            return str(pid)  # no quota: never written into a reason
        if self.slugs is None:
            self.slugs = dict(Project.objects.filter(pk__in=self.ids).values_list("pk", "slug"))
        return self.slugs.get(pid, str(pid))


def _admit_alone(job_id: int, project_id: int) -> bool:
    """The one waiting job, when no quota applies to its project and the window has room: what a pass would
    do, without its lock and counts (a job dispatched to an idle platform starts a few queries sooner). A pass
    racing with this may send the same start task again; the worker's claim makes that harmless."""
    if quotas.quota_for(project_id) is not None or _window_free() <= 0:
        return False
    if not Job.objects.filter(pk=job_id, status=Status.QUEUED, admitted_at__isnull=True).update(
        admitted_at=timezone.now(), wait_reason=""
    ):
        return False
    send_start(job_id)
    log.info("admitted 1 job(s): [%s]", job_id)
    return True


def _window_free() -> int:
    """How many more start tasks may be out: ACC_START_WINDOW less the admitted jobs no worker took yet."""
    in_flight = Job.objects.filter(status=Status.QUEUED, admitted_at__isnull=False, routine_version__isnull=False)
    return settings.ACC_START_WINDOW - in_flight.count()


def _admit_unlimited(job_id: int, project_id: int | None = None) -> bool:
    """Admit a job of a project (`project_id`, when the caller knows it) that no quota limits: nothing to
    count, so no lock and one statement (a jobflow's next node starts a few queries sooner). False when a
    quota applies or it is not a waiting job."""
    unlimited = ~Exists(Quota.objects.filter(Q(project_id=OuterRef("project_id")) | Q(project__isnull=True)))
    rows = Job.objects.filter(unlimited, pk=job_id, status=Status.QUEUED, admitted_at__isnull=True)
    if project_id is not None:
        rows = rows.filter(project_id=project_id)
    return bool(rows.update(admitted_at=timezone.now(), wait_reason=""))


def _admit_one(job_id: int) -> bool:
    row = (
        Job.objects.filter(pk=job_id, status=Status.QUEUED, routine_version__isnull=False)
        .values_list("project_id", "project__slug", "required_cores", "required_ram", "admitted_at", "wait_reason")
        .first()
    )
    if row is None:
        return False
    pid, slug, cores, ram, admitted_at, current = row
    if admitted_at is not None:
        return True  # a pass admitted it already (its start task is out; the worker's claim decides who runs it)
    reason = quotas.blocking_reason(quotas.quota_for(pid), quotas.usage_of([pid])[pid], cores=cores, ram=ram, slug=slug)
    if reason:
        if reason != current:
            Job.objects.filter(pk=job_id, admitted_at__isnull=True).update(wait_reason=reason[:300])
        return False
    return bool(
        Job.objects.filter(pk=job_id, status=Status.QUEUED, admitted_at__isnull=True).update(
            admitted_at=timezone.now(), wait_reason=""
        )
    )


# --- the lock -----------------------------------------------------------------------------------------------------
# Without the cache (Redis down) passes still run, unserialised: better a job over quota than none started.
def _acquire(token: str) -> bool:
    try:
        return bool(cache.add(LOCK_KEY, token, timeout=LOCK_TTL))
    except Exception:
        log.warning("scheduler lock unavailable; running the pass without it", exc_info=True)
        return True


def _release(token: str) -> None:
    try:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)
    except Exception:
        log.warning("could not release the scheduler lock", exc_info=True)


def _flag_again() -> None:
    try:
        cache.set(DIRTY_KEY, 1, timeout=LOCK_TTL)
    except Exception:
        log.warning("could not flag another scheduler pass", exc_info=True)


def _clear_again() -> None:
    try:
        cache.delete(DIRTY_KEY)
    except Exception:
        pass


def _again() -> bool:
    try:
        return bool(cache.get(DIRTY_KEY))
    except Exception:
        return False

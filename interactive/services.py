"""Interactive sessions as people use them: who may enter and stop one, what the proxy asks, stop and extend.

Access: the user who started the job, and the people who may run its
routine themselves (`routines.permissions.can_run_routine`: members of the
routine's project with a role that runs jobs). Using a session is running
code in it (a Jupyter session is a shell), so reading the routine is not
enough: a project viewer, or someone it is shared with one by one to read,
does not get in. A hosted model's run is the launcher's own: besides the
launcher, only those an access rule registered by the app that owns the
run admits (hosting registers the people and groups the model is shared
with), never its other audiences nor the author's project.

The session record and its life in the worker are in `jobs.sessions`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accelerator.errors import Conflict, Forbidden, InvalidInput, NotFound
from backends.sockets import CONF_KEY
from jobs import permissions as job_permissions
from jobs import sessions
from jobs.models import InteractiveSession, Job
from jobs.states import FINAL, Status
from routines import permissions
from workers import services as worker_services
from workers import supervisor

# (user, job) -> True/False when the rule owns the job's session, None when it does not: registered at app start
AccessRule = Callable[[object, Job], "bool | None"]
_access_rules: list[AccessRule] = []


def add_access_rule(rule: AccessRule) -> None:
    """Let an app above this one decide who may use the sessions of the jobs it owns (hosted runs)."""
    if rule not in _access_rules:
        _access_rules.append(rule)


def may_use(user, job: Job) -> bool:
    """Whether `user` may pass the proxy into `job`'s session (see the module docstring)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if job.user_id == user.pk:
        return True
    for rule in _access_rules:
        verdict = rule(user, job)
        if verdict is not None:
            return verdict
    if job.routine_version_id is None:
        return False
    return permissions.can_run_routine(user, job.routine_version.routine)


def may_stop(user, job: Job) -> bool:
    return job.user_id == user.pk or job_permissions.can_cancel_job(user, job)


def proxy_target(token: str) -> dict | None:
    """The session behind `token` as the proxy needs it; None for an unknown token."""
    row = (
        InteractiveSession.objects.filter(token=token)
        .values("job_id", "address", "ready_at", "ended_at", "ends_at", "strip_prefix", "job__status")
        .first()
    )
    if row is None:
        return None
    return {
        "job_id": row["job_id"],
        "address": row["address"],
        "state": sessions.state(job_status=row["job__status"], ended_at=row["ended_at"], ready_at=row["ready_at"]),
        "strip_prefix": row["strip_prefix"],
        "ends_at": row["ends_at"],
    }


def may_use_by_id(user_id: int, job_id: int) -> bool:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    job = Job.objects.select_related("routine_version__routine__project", "flow_run").filter(pk=job_id).first()
    return user is not None and job is not None and may_use(user, job)


def stop_session(*, job: Job, user) -> InteractiveSession | None:
    """End the session now: the server is stopped and the job ends as a session that ran its course.

    A job whose server has not started yet is cancelled instead.
    """
    if not may_stop(user, job):
        raise Forbidden("Only the user who started this session or a maintainer of its project can stop it.")
    session = InteractiveSession.objects.filter(job=job).first()
    if job.status in FINAL or (session is not None and session.ended_at is not None):
        return session
    if session is None or job.status != Status.RUNNING:
        worker_services.cancel_job(job=job, user=user)
        return session
    InteractiveSession.objects.filter(pk=session.pk, stop_requested_at__isnull=True).update(
        stop_requested_at=timezone.now(), stopped_by=user
    )
    sessions.mark_ended(session)  # the proxy stops forwarding now; the supervisor stops the server at once
    supervisor.nudge(job.backend)
    return sessions.reload(session)


def extend_session(*, job: Job, user, seconds: int | None = None) -> InteractiveSession:
    """Push the session's deadline by `seconds`, within ACC_INTERACTIVE_MAX_EXTEND in total."""
    if job.user_id != user.pk:
        raise Forbidden("Only the user who started this session can extend it.")
    seconds = settings.ACC_INTERACTIVE_EXTEND_STEP if seconds is None else seconds
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
        raise InvalidInput("seconds must be a positive whole number of seconds.")
    limit = settings.ACC_INTERACTIVE_MAX_EXTEND
    with transaction.atomic():
        session = InteractiveSession.objects.select_for_update().filter(job=job).first()
        if session is None or session.ends_at is None or session.ended_at is not None or job.status in FINAL:
            raise Conflict("This session is not running, so it cannot be extended.", code="session_not_running")
        if session.extended_seconds + seconds > limit:
            left = max(0, limit - session.extended_seconds)
            raise InvalidInput(
                f"A session may be extended by at most {_span(limit)} in total; {_span(left)} is left.",
                code="extension_limit",
            )
        InteractiveSession.objects.filter(pk=session.pk).update(
            extended_seconds=F("extended_seconds") + seconds, ends_at=F("ends_at") + dt.timedelta(seconds=seconds)
        )
    supervisor.nudge(job.backend)  # the session's log says the new end at once
    return sessions.reload(session)


def extension_left(session: InteractiveSession) -> int:
    return max(0, settings.ACC_INTERACTIVE_MAX_EXTEND - session.extended_seconds)


def session_of(job: Job) -> InteractiveSession | None:
    """The job's session (None until its server is started); NotFound for a job that is not interactive."""
    if sessions.socket_of(job.conf) is None:
        raise NotFound(f"Job {job.pk} is not interactive: its conf has no {CONF_KEY}.")
    return InteractiveSession.objects.filter(job=job).first()


def state_of(session: InteractiveSession | None, job: Job) -> str:
    """queued (no server yet) | starting | ready | over, as the proxy tells them apart."""
    if session is None:
        return sessions.state(job_status=job.status, ended_at=None, ready_at=None, exists=False)
    return sessions.state(job_status=job.status, ended_at=session.ended_at, ready_at=session.ready_at)


def describe(session: InteractiveSession | None, job: Job) -> dict:
    """What the job page and the REST API show of a session (never its internal address)."""
    state = state_of(session, job)
    if session is None:
        return {"state": state, "url": None, "path": None, "socket": job.conf.get(CONF_KEY), "ends_at": None}
    left = extension_left(session) if state != "over" else 0
    step = min(settings.ACC_INTERACTIVE_EXTEND_STEP, left)
    return {
        "state": state,
        "url": sessions.url_of(session),
        "path": session.path,
        "socket": session.socket,
        "ready_at": session.ready_at,
        "ends_at": session.ends_at,
        "ended_at": session.ended_at,
        "extended_seconds": session.extended_seconds,
        "extension_left": left,
        "extend_step": step,
        "extend_step_label": _span(step),
        "extension_left_label": _span(left),
        "extended_label": _span(session.extended_seconds),
    }


def _span(seconds: int) -> str:
    """4 h, 1 h 30 min, 30 min, 45 s: the largest units that say it exactly."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(p for p in parts if p) or "0 s"

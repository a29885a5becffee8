"""Interactive sessions: dispatch checks, who may use one, and its life (open, ready, stop, extend, end).

An interactive routine is an ordinary routine whose conf has
`interactive_socket`. The worker opens a session row just before the job
starts (`open_session`), probes the socket until the server accepts
connections (`mark_ready` writes the URL to the log), and ends the session
at the deadline `ends_at` (the job's timeout plus extensions), on a stop
request, or when the server exits. The proxy (`workers.proxy`) serves the
URL; `proxy_target` and `may_use` are what it asks.

Access: the user who started the job, and the people who may run its
routine themselves (`routines.permissions.can_run_routine`: members of the
routine's project with a role that runs jobs). Using a session is running
code in it (a Jupyter session is a shell), so reading the routine is not
enough: a project viewer, or someone it is shared with one by one to read,
does not get in. A hosted model's run is
the launcher's own: besides the launcher, only the people and groups the
hosted model is shared with (`hosting.access.shares_of`), never its other
audiences (a public model's every signed-in user) nor the author's project.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accelerator.errors import Conflict, Forbidden, InvalidInput, NotFound
from routines import permissions
from workers import events
from workers.backends import get_backend
from workers.backends.sockets import CONF_KEY, Socket, parse_socket
from workers.models import InteractiveSession, Job
from workers.states import FINAL, Status

PREFIX_KEY = "interactive_prefix"  # "strip" (default): the server sees "/"; "keep": it sees /interactive/<id>/


# --- dispatch ------------------------------------------------------------------------
def socket_of(conf: dict | None) -> Socket | None:
    value = (conf or {}).get(CONF_KEY)
    return parse_socket(value) if value else None


def check_dispatch(*, user, conf: dict | None, lock: bool = False) -> None:
    """Refuse a job whose interactive socket is malformed, or that would pass the user's session cap.

    With `lock` (inside the transaction that saves the job) the user's row
    is locked first, so two dispatches at once cannot both take the last slot.
    """
    try:
        sock = socket_of(conf)
        if sock is None:
            return
        get_backend().check_socket(sock)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if (conf or {}).get(PREFIX_KEY, "strip") not in ("strip", "keep"):
        raise InvalidInput(f"{PREFIX_KEY} must be 'strip' (the default) or 'keep'.")
    cap = settings.ACC_INTERACTIVE_MAX_PER_USER
    if not cap:
        return
    if lock:
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    live = Job.objects.live().filter(user=user, conf__has_key=CONF_KEY).exclude(interactive__ended_at__isnull=False)
    if live.count() >= cap:
        raise Conflict(
            f"You already have {cap} interactive session{'s' if cap != 1 else ''} running or queued, the most "
            "allowed at once; stop one from its job page first.",
            code="too_many_sessions",
        )


# --- access ---------------------------------------------------------------------------
def may_use(user, job: Job) -> bool:
    """Whether `user` may pass the proxy into `job`'s session (see the module docstring)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if job.user_id == user.pk:
        return True
    from hosting.models import HostedRun

    carriers = [job.pk] + ([job.flow_run.root_id] if job.flow_run_id else [])
    run = HostedRun.objects.select_related("model").filter(job_id__in=carriers).first()
    if run is not None:
        return _shared_hosted_model(user, run.model)
    if job.routine_version_id is None:
        return False
    return permissions.can_run_routine(user, job.routine_version.routine)


def _shared_hosted_model(user, model) -> bool:
    from hosting import access

    groups = set(user.groups.values_list("name", flat=True))
    return any(row.get("user") == user.username or row.get("group") in groups for row in access.shares_of(model))


def may_stop(user, job: Job) -> bool:
    return job.user_id == user.pk or permissions.can_cancel_job(user, job)


# --- what the proxy asks ------------------------------------------------------------------
def proxy_target(token: str) -> dict | None:
    """The session behind `token` as the proxy needs it; None for an unknown token."""
    row = (
        InteractiveSession.objects.filter(token=token)
        .values("job_id", "address", "ready_at", "ended_at", "ends_at", "strip_prefix", "job__status")
        .first()
    )
    if row is None:
        return None
    if row["ended_at"] is not None or row["job__status"] in FINAL:
        state = "over"
    elif row["address"] and row["ready_at"] is not None:
        state = "ready"
    else:
        state = "starting"
    return {
        "job_id": row["job_id"],
        "address": row["address"],
        "state": state,
        "strip_prefix": row["strip_prefix"],
        "ends_at": row["ends_at"],
    }


def may_use_by_id(user_id: int, job_id: int) -> bool:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    job = Job.objects.select_related("routine_version__routine__project", "flow_run").filter(pk=job_id).first()
    return user is not None and job is not None and may_use(user, job)


# --- the session's life (worker side) ------------------------------------------------------
def url_of(session: InteractiveSession) -> str:
    return settings.ACC_INTERACTIVE_BASE_URL + session.path


def open_session(job: Job) -> InteractiveSession:
    """The job's session row, made before its server starts (the URL goes into the job's environment)."""
    prefix = (job.conf or {}).get(PREFIX_KEY, "strip")
    session, _ = InteractiveSession.objects.get_or_create(
        job=job,
        defaults={
            "token": new_token(),
            "socket": job.conf[CONF_KEY],
            "strip_prefix": prefix != "keep",
        },
    )
    return session


def new_token() -> str:
    """160 random bits in lowercase hex: fit for a path and for a DNS label (browsers lowercase host names)."""
    return secrets.token_hex(20)


def session_env(session: InteractiveSession) -> dict[str, str]:
    """What the job's server may want to know: its public URL and the path prefix the proxy serves it under
    ("/" when sessions have hosts of their own)."""
    prefix = "/" if settings.ACC_INTERACTIVE_HOST else session.path
    return {"ACC_INTERACTIVE_URL": url_of(session), "ACC_INTERACTIVE_PREFIX": prefix}


def started(session: InteractiveSession, *, timeout: int) -> None:
    """The server was started: its deadline is `timeout` seconds from now, plus any extension granted."""
    ends_at = timezone.now() + dt.timedelta(seconds=timeout + session.extended_seconds)
    InteractiveSession.objects.filter(pk=session.pk).update(ends_at=ends_at)
    session.ends_at = ends_at


def mark_ready(session: InteractiveSession, address: str) -> None:
    now = timezone.now()
    InteractiveSession.objects.filter(pk=session.pk).update(address=address, ready_at=now)
    session.address, session.ready_at = address, now


def mark_ended(session: InteractiveSession) -> None:
    """From now on the URL says the session is over. Called before the server is stopped, so that no proxy
    forwards to a server on its way out: they hear it at once on the channel layer (and see it in the
    database within a second without it)."""
    if InteractiveSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(ended_at=timezone.now()):
        token = session.token
        transaction.on_commit(lambda: events.session_ended(token))


def reload(session: InteractiveSession) -> InteractiveSession:
    return InteractiveSession.objects.get(pk=session.pk)


# --- actions from the page and the API -------------------------------------------------------
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
        from workers.services import cancel_job

        cancel_job(job=job, user=user)
        return session
    InteractiveSession.objects.filter(pk=session.pk, stop_requested_at__isnull=True).update(
        stop_requested_at=timezone.now(), stopped_by=user
    )
    mark_ended(session)
    from workers.services import stop_backend

    stop_backend(job)  # at once, not at the worker's next heartbeat
    return reload(session)


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
    return reload(session)


def extension_left(session: InteractiveSession) -> int:
    return max(0, settings.ACC_INTERACTIVE_MAX_EXTEND - session.extended_seconds)


def session_of(job: Job) -> InteractiveSession | None:
    """The job's session (None until its server is started); NotFound for a job that is not interactive."""
    if socket_of(job.conf) is None:
        raise NotFound(f"Job {job.pk} is not interactive: its conf has no {CONF_KEY}.")
    return InteractiveSession.objects.filter(job=job).first()


def state_of(session: InteractiveSession | None, job: Job) -> str:
    """queued (no server yet) | starting | ready | over, as the proxy tells them apart."""
    if job.status in FINAL or (session is not None and session.ended_at is not None):
        return "over"
    if session is None:
        return "queued"
    return "ready" if session.ready_at is not None else "starting"


def describe(session: InteractiveSession | None, job: Job) -> dict:
    """What the job page and the REST API show of a session (never its internal address)."""
    state = state_of(session, job)
    if session is None:
        return {"state": state, "url": None, "path": None, "socket": job.conf.get(CONF_KEY), "ends_at": None}
    left = extension_left(session) if state != "over" else 0
    step = min(settings.ACC_INTERACTIVE_EXTEND_STEP, left)
    return {
        "state": state,
        "url": url_of(session),
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

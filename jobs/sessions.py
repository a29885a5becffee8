"""An interactive job's session record: dispatch checks, and its life as the worker drives it.

An interactive routine is an ordinary routine whose conf has
`interactive_socket`. The worker opens a session row just before the job
starts (`open_session`), probes the socket until the server accepts
connections (`mark_ready`), and ends the session at the deadline `ends_at`
(the job's timeout plus extensions), on a stop request, or when the server
exits (`mark_ended`). Who may use a session, the proxy that serves its URL
and the stop and extend actions are in the `interactive` app.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accelerator.errors import Conflict, InvalidInput
from backends import get_backend
from backends.sockets import CONF_KEY, Socket, parse_socket
from jobs import events
from jobs.models import InteractiveSession, Job
from jobs.states import FINAL

PREFIX_KEY = "interactive_prefix"  # "strip" (default): the server sees "/"; "keep": it sees /interactive/<id>/


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


def state(*, job_status: str, ended_at, ready_at, exists: bool = True) -> str:
    """queued (no session row yet) | starting | ready | over: the one rule the proxy and the pages share."""
    if job_status in FINAL or ended_at is not None:
        return "over"
    if not exists:
        return "queued"
    return "ready" if ready_at is not None else "starting"


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

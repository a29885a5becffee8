"""The accli login flow: auth codes, rotating refresh tokens, short-lived access tokens."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accelerator.errors import AuthFailed, InvalidInput
from accounts.models import AccessToken, AuthCode, RefreshToken


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def mint_auth_code(*, user) -> str:
    """A code to paste into `accli login`. Readable: 4 groups of 4 characters."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
    AuthCode.objects.create(
        user=user, code_hash=_hash(raw), expires_at=timezone.now() + timedelta(seconds=settings.ACC_AUTH_CODE_TTL)
    )
    return raw


def _issue(model, prefix: str, ttl: int, user, family) -> str:
    raw = prefix + secrets.token_urlsafe(32)
    model.objects.create(
        user=user, family=family, token_hash=_hash(raw), expires_at=timezone.now() + timedelta(seconds=ttl)
    )
    return raw


def _issue_refresh(user, family) -> str:
    return _issue(RefreshToken, "acr_", settings.ACC_REFRESH_TOKEN_TTL, user, family)


def _issue_access(user, family) -> str:
    return _issue(AccessToken, "aca_", settings.ACC_ACCESS_TOKEN_TTL, user, family)


def exchange_auth_code(*, code: str) -> str:
    """Trade a pasted code for the first refresh token of a new family."""
    code = (code or "").strip().upper()
    if not code:
        raise InvalidInput("No authorization code given. Open /acli-auth-code in the browser and paste the code.")
    now = timezone.now()
    with transaction.atomic():
        row = AuthCode.objects.select_for_update().filter(code_hash=_hash(code)).first()
        if row is None:
            raise InvalidInput("This authorization code is not valid. Get a new one at /acli-auth-code.")
        if row.used_at is not None:
            raise InvalidInput("This authorization code was already used. Get a new one at /acli-auth-code.")
        if row.expires_at <= now:
            raise InvalidInput("This authorization code has expired. Get a new one at /acli-auth-code.")
        row.used_at = now
        row.save(update_fields=["used_at"])
        return _issue_refresh(row.user, uuid.uuid4())


def rotate_refresh_token(*, refresh_token: str) -> dict:
    """Exchange a refresh token for an access token and its successor.

    A refresh token is single-use: a second use revokes its whole family,
    since only a thief or a broken client presents a rotated token again.
    """
    if not refresh_token:
        raise InvalidInput("No refresh_token given. Run `accli login` first.")
    now = timezone.now()
    replayed = None
    with transaction.atomic():
        row = RefreshToken.objects.select_for_update().filter(token_hash=_hash(refresh_token)).first()
        if row is None or row.revoked_at is not None:
            raise AuthFailed("This refresh token is not valid. Run `accli login` again.")
        if row.used_at is not None:
            replayed = row.family
        elif row.expires_at <= now:
            raise AuthFailed("This refresh token has expired. Run `accli login` again.")
        else:
            row.used_at = now
            row.save(update_fields=["used_at"])
            return {
                "access_token": _issue_access(row.user, row.family),
                "refresh_token": _issue_refresh(row.user, row.family),
            }

    # outside the transaction above: the revocation must survive the error we raise
    revoke_family(replayed)
    raise AuthFailed(
        "This refresh token was already used; for safety its session is now revoked. Run `accli login` again."
    )


def revoke_family(family) -> None:
    now = timezone.now()
    RefreshToken.objects.filter(family=family, revoked_at__isnull=True).update(revoked_at=now)
    AccessToken.objects.filter(family=family, revoked_at__isnull=True).update(revoked_at=now)


def user_for_access_token(raw: str):
    """The user an access token belongs to; AuthFailed with the reason otherwise."""
    row = AccessToken.objects.select_related("user").filter(token_hash=_hash(raw)).first()
    if row is None:
        raise AuthFailed("The access token is not valid. Run `accli login` again.")
    if row.revoked_at is not None:
        raise AuthFailed("The access token was revoked. Run `accli login` again.")
    if row.expires_at <= timezone.now():
        raise AuthFailed("The access token has expired. Exchange your refresh token for a new one.")
    if not row.user.is_active:
        raise AuthFailed("This account is disabled.")
    return row.user


CAS_PREFIX = "xet_session_prj_"
ACCESS_TOKEN_LENGTH = len("aca_") + 43  # token_urlsafe(32): 43 characters


@dataclass(frozen=True)
class CasToken:
    """accli's token for the Xet endpoints: `xet_session_prj_<project slug>_<access token>`."""

    raw: str
    project_slug: str
    access_token: str


def parse_cas_token(raw: str) -> CasToken | None:
    """Split a CAS token; None when `raw` is not one (it may be a plain access token)."""
    if not raw.startswith(CAS_PREFIX):
        return None
    rest = raw[len(CAS_PREFIX) :]
    slug, access = rest[: -ACCESS_TOKEN_LENGTH - 1], rest[-ACCESS_TOKEN_LENGTH:]
    if not slug or rest[-ACCESS_TOKEN_LENGTH - 1] != "_" or not access.startswith("aca_"):
        raise AuthFailed("The Xet token is not valid. Run `accli login` again.")
    return CasToken(raw=raw, project_slug=slug, access_token=access)


def access_token_expiry(raw: str) -> int:
    """Unix time at which a (valid) access token expires."""
    user_for_access_token(raw)
    row = AccessToken.objects.filter(token_hash=_hash(raw)).values_list("expires_at", flat=True).first()
    return int(row.timestamp())


def issue_token_pair(*, user) -> dict:
    """For scripts and tests: a fresh family without going through the web page."""
    family = uuid.uuid4()
    return {"access_token": _issue_access(user, family), "refresh_token": _issue_refresh(user, family)}

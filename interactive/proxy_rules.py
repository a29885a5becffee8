"""What the interactive proxy forwards and keeps, as plain functions of headers, paths and hosts.

The rules of `interactive.proxy` without any I/O, so each is tested with plain
asserts: which request headers reach the session's server (never the
platform's credentials, no hop-by-hop headers, X-Forwarded-* added), which
response headers reach the browser (never a platform cookie, redirects kept
under the prefix), how a URL names its session (`/interactive/<id>/...` or,
with ACC_INTERACTIVE_HOST, a host of its own), and the signed values that
carry a user from the platform's origin to a session's host.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core import signing

PREFIX = "/interactive/"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding"}
    | {"upgrade", "proxy-connection"}
)
# Platform credentials: never forwarded.
_CREDENTIAL_HEADERS = frozenset({"x-authorization", "x-link-token"})
_FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-prefix"})
# On a session's own host: where a ticket from the platform is exchanged for the cookie below.
ENTER_PATH = "/_acc/enter"
SESSION_COOKIE = "acc_interactive"
TICKET_AGE, COOKIE_AGE = 60, 12 * 3600
_TICKET_SALT, _COOKIE_SALT = "acc.interactive.ticket", "acc.interactive.cookie"


# --- requests -------------------------------------------------------------------------------
def header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def cookie(scope: dict, name: str) -> str | None:
    """One cookie's value from the Cookie header (a plain split: this runs on every proxied request)."""
    for part in header(scope, b"cookie").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip('"') or None
    return None


def bearer(scope: dict) -> str:
    raw = header(scope, b"x-authorization").strip()
    if not raw:
        auth = header(scope, b"authorization")
        raw = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    return raw


def platform_cookies() -> frozenset[str]:
    return frozenset({settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME, SESSION_COOKIE})


def without_platform_cookies(value: str) -> str:
    ours = platform_cookies()
    kept = [part for part in value.split(";") if part.strip().split("=", 1)[0].strip() not in ours]
    return ";".join(kept).strip()


def forward_headers(scope: dict, *, prefix: str, drop: frozenset[str] = frozenset()) -> list[tuple[bytes, bytes]]:
    """The client's headers as the job's server may see them: no credentials, no hop-by-hop, X-Forwarded-*."""
    connection = {t.strip().lower() for t in header(scope, b"connection").split(",") if t.strip()}
    out: list[tuple[bytes, bytes]] = []
    forwarded_for = ""
    for raw_key, raw_value in scope.get("headers", []):
        key = raw_key.decode("latin-1").lower()
        if key in HOP_BY_HOP or key in connection or key in _CREDENTIAL_HEADERS or key in drop:
            continue
        if key == "x-forwarded-for":
            forwarded_for = raw_value.decode("latin-1")
            continue
        if key in _FORWARDED:
            continue
        if key == "authorization" and raw_value[:7].lower() == b"bearer ":
            continue
        if key == "cookie":
            kept = without_platform_cookies(raw_value.decode("latin-1"))
            if kept:
                out.append((b"cookie", kept.encode("latin-1")))
            continue
        out.append((key.encode("latin-1"), raw_value))
    client = (scope.get("client") or ("", 0))[0]
    if client:
        forwarded_for = f"{forwarded_for}, {client}" if forwarded_for else client
    if forwarded_for:
        out.append((b"x-forwarded-for", forwarded_for.encode("latin-1")))
    out.append((b"x-forwarded-proto", b"https" if scope.get("scheme") in ("https", "wss") else b"http"))
    host = header(scope, b"host")
    if host:
        out.append((b"x-forwarded-host", host.encode("latin-1")))
    out.append((b"x-forwarded-prefix", prefix.rstrip("/").encode("latin-1")))
    return out


def response_headers(headers: list[tuple[bytes, bytes]], *, prefix: str, strip: bool) -> list[tuple[bytes, bytes]]:
    """The server's response headers for the client: no hop-by-hop, no platform cookies, redirects under prefix."""
    ours = platform_cookies()
    connection = {
        t.strip().lower()
        for key, value in headers
        if key.lower() == b"connection"
        for t in value.decode("latin-1").split(",")
        if t.strip()
    }
    out = []
    for raw_key, value in headers:
        key = raw_key.decode("latin-1").lower()
        if key in HOP_BY_HOP or key in connection:
            continue
        if key == "set-cookie" and value.decode("latin-1").split("=", 1)[0].strip() in ours:
            continue
        if key == "location" and strip:
            value = under_prefix(value.decode("latin-1"), prefix).encode("latin-1")
        out.append((key.encode("latin-1"), value))
    return out


def under_prefix(location: str, prefix: str) -> str:
    """A redirect to an absolute path of the server (`/lab`) is a path below the session's prefix."""
    if location.startswith("/") and not location.startswith("//") and not location.startswith(prefix):
        return prefix.rstrip("/") + location
    return location


def split_path(raw_path: str) -> tuple[str, str] | None:
    """(token, rest of the path) of `/interactive/<token>/<rest>`; rest is "" without the trailing slash."""
    tail = raw_path[len(PREFIX) :]
    token, slash, rest = tail.partition("/")
    if not _TOKEN.match(token):
        return None
    return token, (slash + rest)


# --- a host of its own per session (ACC_INTERACTIVE_HOST) ----------------------------------------
def host_pattern() -> re.Pattern | None:
    """The session hosts as a regex with the group `id`; a pattern without a port matches any port."""
    pattern = settings.ACC_INTERACTIVE_HOST.strip().lower()
    if not pattern:
        return None
    regex = re.escape(pattern).replace(re.escape("{id}"), "(?P<id>[a-z0-9]{16,64})")
    if ":" not in pattern:
        regex += r"(?::\d+)?"
    return re.compile(regex)


def session_origin(token: str, scope: dict) -> str:
    """scheme://host[:port] of a session's own host, seen from a request to the platform."""
    host = settings.ACC_INTERACTIVE_HOST.strip().lower().replace("{id}", token)
    if ":" not in host:
        _name, sep, port = header(scope, b"host").rpartition(":")
        if sep and port.isdigit():
            host = f"{host}:{port}"
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return f"{scheme}://{host}"


def ticket_for(user_id: int, token: str) -> str:
    """What the platform hands the session's host to sign a user in there: valid TICKET_AGE seconds."""
    return signing.dumps([user_id, token], salt=_TICKET_SALT, compress=False)


def cookie_for(user_id: int, token: str) -> str:
    return signing.dumps([user_id, token], salt=_COOKIE_SALT, compress=False)


def read_ticket(value: str, token: str) -> int | None:
    return _read_signed(value, _TICKET_SALT, TICKET_AGE, token)


def read_cookie(value: str, token: str) -> int | None:
    return _read_signed(value, _COOKIE_SALT, COOKIE_AGE, token)


def _read_signed(value: str, salt: str, max_age: int, token: str) -> int | None:
    """The user id in a signed [user id, token] that is fresh enough and names this very session."""
    try:
        user_id, signed_token = signing.loads(value, salt=salt, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    return user_id if signed_token == token and isinstance(user_id, int) else None


def same_origin(scope: dict) -> bool:
    """A websocket handshake from a page of this very host (or from a client that sends no Origin)."""
    origin = header(scope, b"origin")
    if not origin:
        return True
    return origin.split("://", 1)[-1].rstrip("/").lower() == header(scope, b"host").lower()

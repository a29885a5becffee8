"""The interactive-session proxy: an ASGI app serving a session's URL from the job's own server.

accelerator/asgi.py hands it every HTTP request and websocket under
/interactive/ (and, with ACC_INTERACTIVE_HOST, every request to a session's
own host). It finds the session by the unguessable id in the URL, lets
through only the people `interactive.services.may_use` names (anyone else
gets the same 404 as for an id that does not exist; a visitor who is not
signed in is sent to the login page), and forwards to the address the
worker recorded (`tcp://ip:port` or `unix:///path`):

- HTTP with `interactive.upstream` (httptools on an asyncio protocol, connections kept
  alive per session), streamed both ways: the request body as it arrives,
  the response chunk by chunk, never buffered whole;
- WebSocket with `websockets`, message by message in both directions, with
  the subprotocol the server picks and its close code; a handshake from a
  page of another origin is refused.

What is forwarded and what is kept back is decided in `interactive.proxy_rules`:
the server never sees the platform's cookies, `X-Authorization`,
`Authorization: Bearer` or `X-Link-Token`, and may not set the platform's
cookies. Under /interactive/ the path prefix is stripped unless the session's
conf says `interactive_prefix: keep`.

With ACC_INTERACTIVE_HOST the platform's URL only signs the user in: it
redirects to the session's host with a signed ticket valid for a minute,
which that host exchanges for a cookie of its own (`acc_interactive`). The
session's pages then run on an origin of their own and cannot act as the
viewer on the platform.

Lookups hit the database through a thread, so their answers are kept a
moment (users by cookie or token for 5 s, access for 5 s, a ready or ended
session for 1 s): a request normally costs no query. An ended session is
forgotten at once: the worker (or the stop action) announces it on the
channel layer before the server is stopped, and every proxy listens. A
revoked share or a sign-out takes effect within 5 s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from urllib.parse import parse_qs, quote

from channels.db import database_sync_to_async
from django.conf import settings
from django.template.loader import render_to_string
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.client import unix_connect as ws_unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from accelerator.security_headers import own_page_headers
from backends.sockets import split_address
from interactive import proxy_rules as rules
from interactive import services
from interactive.upstream import Pool
from jobs import events

log = logging.getLogger(__name__)

PREFIX = rules.PREFIX
# The websocket handshake the client library makes itself.
_WS_HANDSHAKE = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}
    | {"sec-websocket-accept", "host", "origin", "user-agent", "content-length"}
)
_RESERVED_CLOSE = {1004, 1005, 1006, 1015}
USER_TTL, ACCESS_TTL, TARGET_TTL = 5.0, 5.0, 1.0
MAX_POOLS = 256


class _TTLCache:
    """A small dict whose entries expire; cleared whole when it grows past `size`."""

    def __init__(self, ttl: float, size: int = 10_000):
        self.ttl, self.size, self.data = ttl, size, {}

    def get(self, key):
        hit = self.data.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], True
        return None, False

    def put(self, key, value) -> None:
        if len(self.data) >= self.size:
            self.data.clear()
        self.data[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        self.data.clear()


# --- database (on a worker thread) ---------------------------------------------------------
def _session_user_id(session_key: str) -> int | None:
    """The signed-in user of a Django session, checked as Django's own middleware does."""
    from importlib import import_module

    from django.contrib.auth import get_user

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(SimpleNamespace(session=store))
    return user.pk if user.is_authenticated and user.is_active else None


def _token_user_id(raw: str) -> int | None:
    from accelerator.errors import AuthFailed
    from accounts.services import user_for_access_token

    try:
        return user_for_access_token(raw).pk
    except AuthFailed:
        return None


class InteractiveProxy:
    """The ASGI app of /interactive/. One instance per process; it keeps a connection pool per session."""

    def __init__(self, *, standalone: bool = False):
        # standalone: in a process of its own (manage.py serve_proxy), on an origin that is not the platform's
        self.standalone = standalone
        self.users = _TTLCache(USER_TTL)
        self.access = _TTLCache(ACCESS_TTL)
        self.targets = _TTLCache(TARGET_TTL)
        self.pools: dict[tuple[str, str], Pool] = {}

    async def __call__(self, scope, receive, send):
        self._listen_for_ends()
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
        elif scope["type"] == "lifespan":  # pragma: no cover - daphne sends none
            return

    # --- sessions that end ----------------------------------------------------------------
    def _listen_for_ends(self) -> None:
        """Keep one task listening for `session.ended` (restarted, at most every few seconds, if it failed)."""
        task = getattr(self, "_listener", None)
        if task is not None and not task.done():
            return
        if time.monotonic() < getattr(self, "_listen_after", 0.0):
            return
        self._listen_after = time.monotonic() + 5
        self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        """Forget an ended session at once, so nothing is forwarded to its server on its way out."""
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        channel = await layer.new_channel()

        async def stay_joined() -> None:  # a group membership expires on the layer (a day by default)
            while True:
                await layer.group_add(events.SESSIONS_GROUP, channel)
                await asyncio.sleep(3600)

        joined = asyncio.ensure_future(stay_joined())
        failures = 0
        try:
            while True:
                started = time.monotonic()
                try:
                    message = await layer.receive(channel)
                except Exception as exc:
                    # channels_redis with redis-py 8 gives up an idle blocking pop with a TimeoutError after
                    # its 5 s: listen again at once. Anything failing fast (Redis down) is retried slower.
                    failures = failures + 1 if time.monotonic() - started < 1 else 0
                    if failures:
                        if failures % 100 == 1:
                            log.warning("interactive proxy: cannot hear ended sessions: %r", exc)
                        await asyncio.sleep(min(5.0, 0.1 * failures))
                    continue
                failures = 0
                token = message.get("token")
                if token:
                    self.targets.data.pop(token, None)
                    await self._drop_pool(token)
        except Exception:
            log.warning("interactive proxy: not hearing ended sessions for now", exc_info=True)
        finally:
            joined.cancel()

    # --- who, and to what -----------------------------------------------------------------
    async def user_id(self, scope: dict) -> int | None:
        key = rules.cookie(scope, settings.SESSION_COOKIE_NAME)
        if key:
            found = await self._cached(self.users, ("s", key), _session_user_id, key)
            if found is not None:
                return found
        bearer = rules.bearer(scope)
        if bearer:
            return await self._cached(self.users, ("t", bearer), _token_user_id, bearer)
        return None

    async def target(self, token: str, *, fresh: bool = False) -> dict | None:
        """The session behind `token`. Only "ready" and "over" are kept a moment: a starting session is asked
        again on every request, so the first request after the server is up already reaches it."""
        value, hit = (None, False) if fresh else self.targets.get(token)
        if not hit:
            value = await database_sync_to_async(services.proxy_target)(token)
            if value is not None and value["state"] in ("ready", "over"):
                self.targets.put(token, value)
        if value is not None and value["state"] == "over":
            await self._drop_pool(token)
        return value

    async def allowed(self, user_id: int, job_id: int) -> bool:
        return await self._cached(self.access, (user_id, job_id), services.may_use_by_id, user_id, job_id)

    async def _cached(self, cache: _TTLCache, key, func: Callable, *args):
        value, hit = cache.get(key)
        if not hit:
            value = await database_sync_to_async(func)(*args)
            cache.put(key, value)
        return value

    def host_token(self, scope: dict) -> str | None:
        """The session a request names by its host (ACC_INTERACTIVE_HOST), or None."""
        pattern = self._host_pattern()
        if pattern is None:
            return None
        found = pattern.fullmatch(rules.header(scope, b"host").lower())
        return found.group("id") if found else None

    def _host_pattern(self):
        setting = settings.ACC_INTERACTIVE_HOST
        if getattr(self, "_pattern_for", None) != setting:
            self._pattern, self._pattern_for = rules.host_pattern(), setting
        return self._pattern

    def handles(self, scope: dict) -> bool:
        """Whether a request is the proxy's: a path under /interactive/, or a session's own host."""
        return scope["path"].startswith(PREFIX) or self.host_token(scope) is not None

    async def resolve(self, scope: dict) -> tuple[str, dict | None, int | None, str]:
        """Path mode: (outcome, target, user id, rest of the path). outcome: login | redirect | not_found | go."""
        parts = rules.split_path(_raw_path(scope))
        user_id = await self.user_id(scope)
        if user_id is None:
            return "login", None, None, ""
        if parts is None:
            return "not_found", None, user_id, ""
        token, rest = parts
        target = await self.target(token)
        if target is None or not await self.allowed(user_id, target["job_id"]):
            return "not_found", None, user_id, ""
        target = {**target, "token": token, "prefix": f"{PREFIX}{token}/"}
        return ("redirect" if rest == "" else "go"), target, user_id, rest

    async def resolve_host(self, scope: dict, token: str) -> tuple[str, dict | None, int | None, str]:
        """On a session's own host: the user comes from the cookie set there (outcome reauth without one)."""
        raw = rules.cookie(scope, rules.SESSION_COOKIE)
        user_id = rules.read_cookie(raw, token) if raw else None
        if user_id is None:
            return "reauth", None, None, ""
        target = await self.target(token)
        if target is None or not await self.allowed(user_id, target["job_id"]):
            return "not_found", None, user_id, ""
        target = {**target, "token": token, "prefix": "/", "strip_prefix": True}
        return "go", target, user_id, _raw_path(scope)

    # --- HTTP ---------------------------------------------------------------------------
    def platform(self, on_session_host: bool) -> str:
        """What links on our own pages start with: '' on the platform's origin, else the platform's URL."""
        return settings.ACC_PLATFORM_URL if self.standalone or on_session_host else ""

    def login_url(self, scope: dict) -> str:
        """The platform's sign-in page, coming back to this session's URL afterwards."""
        if not self.standalone:
            return f"{settings.LOGIN_URL}?next={quote(scope['path'])}"
        back = settings.ACC_INTERACTIVE_BASE_URL + _with_query(_raw_path(scope), scope)
        return f"{settings.ACC_PLATFORM_URL}{settings.LOGIN_URL}?next={quote(back, safe='')}"

    async def http(self, scope, receive, send):
        token = self.host_token(scope)
        platform = self.platform(token is not None)
        if token is not None:
            if scope["path"] == rules.ENTER_PATH:
                return await self._enter(scope, send, token)
            outcome, target, _user, rest = await self.resolve_host(scope, token)
            if outcome == "reauth":  # through the platform, which signs the user in here again
                return await _redirect(send, _platform_url(token, _raw_path(scope), scope))
        else:
            outcome, target, user_id, rest = await self.resolve(scope)
            if outcome == "login":
                if scope["method"] in ("GET", "HEAD"):
                    return await _redirect(send, self.login_url(scope))
                return await _page(send, 401, "Sign in", "Sign in to use this interactive session.", platform=platform)
            if outcome in ("go", "redirect") and self._host_pattern() is not None:
                return await _redirect(send, _enter_url(scope, target["token"], user_id, rest or "/"))
        if outcome == "not_found":
            return await _not_found(send, platform)
        if outcome == "redirect":
            query = scope.get("query_string") or b""
            return await _redirect(send, target["prefix"] + ("?" + query.decode("latin-1") if query else ""))
        if target["state"] != "ready":
            return await _state_page(send, target, platform)
        try:
            await self._forward_http(scope, receive, send, target, rest)
        except (OSError, asyncio.IncompleteReadError) as exc:  # UpstreamError is an OSError
            fresh = await self.target(target["token"], fresh=True)
            if fresh is not None and fresh["state"] != "ready":
                return await _state_page(send, {**target, **fresh}, platform)
            log.info("interactive proxy: job %s did not answer: %s", target["job_id"], exc)
            await _page(
                send,
                502,
                "The session's server is not answering",
                "The server inside the job did not accept the request. It may be busy or restarting; try again.",
                job_id=target["job_id"],
                platform=platform,
            )

    async def _enter(self, scope, send, token: str) -> None:
        """A session's host takes the platform's ticket, sets its own cookie and goes on to `next`."""
        params = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
        user_id = rules.read_ticket(params.get("ticket", [""])[0], token)
        if user_id is None:
            expired = "Open the session again from its job page."
            return await _page(send, 403, "This link has expired", expired, platform=self.platform(True))
        following = params.get("next", ["/"])[0]
        if not following.startswith("/") or following.startswith("//"):
            following = "/"
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        value = rules.cookie_for(user_id, token)
        cookie = f"{rules.SESSION_COOKIE}={value}; Path=/; Max-Age={rules.COOKIE_AGE}; HttpOnly; SameSite=Lax{secure}"
        await _redirect(send, following, extra=[(b"set-cookie", cookie.encode("latin-1"))])

    async def _forward_http(self, scope, receive, send, target: dict, rest: str) -> None:
        prefix, strip = target["prefix"], target["strip_prefix"]
        query = scope.get("query_string") or b""
        path = (rest if strip else prefix.rstrip("/") + rest).encode("latin-1") + (b"?" + query if query else b"")
        headers = rules.forward_headers(scope, prefix=prefix)
        has_body = bool(rules.header(scope, b"transfer-encoding")) or rules.header(scope, b"content-length") not in (
            "",
            "0",
        )
        if not rules.header(scope, b"host"):
            headers.append((b"host", b"localhost"))
        body_done = asyncio.Event()
        body = _request_body(receive, body_done) if has_body else None
        if body is None:
            body_done.set()
        pool = self._pool(target)
        conn, response = await pool.request(scope["method"].encode("latin-1"), path, headers, body)
        finished = False
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": rules.response_headers(list(response.headers), prefix=prefix, strip=strip),
                }
            )
            try:
                await self._stream_body(conn, receive, send, body_done)
            except (OSError, asyncio.IncompleteReadError) as exc:  # the response has begun: nothing else to say
                log.info("interactive proxy: job %s broke off a response: %s", target["job_id"], exc)
                return
            finished = True
        finally:
            if finished:
                pool.release(conn)
            else:
                conn.close()

    async def _stream_body(self, conn, receive, send, body_done: asyncio.Event) -> None:
        watcher = None  # only a streamed response (more than one chunk) needs to notice the client leave
        try:
            async for chunk, last in conn.body():
                if last:  # a small page: its only chunk ends the response in one message
                    await send({"type": "http.response.body", "body": chunk, "more_body": False})
                    continue
                if watcher is None:
                    watcher = asyncio.ensure_future(_wait_disconnect(receive, body_done))
                    # the client left: drop the server's connection, which ends a wait for its next chunk
                    watcher.add_done_callback(lambda w: None if w.cancelled() else conn.close())
                elif watcher.done():
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            if watcher is not None:
                watcher.cancel()

    def _pool(self, target: dict) -> Pool:
        """The session's connection pool (one per token and address; a later session never reuses one)."""
        key = (target["token"], target["address"])
        pool = self.pools.get(key)
        if pool is None:
            if len(self.pools) >= MAX_POOLS:
                self.pools.pop(next(iter(self.pools))).close()
            pool = self.pools[key] = Pool(target["address"])
        return pool

    async def _drop_pool(self, token: str) -> None:
        for key in [k for k in self.pools if k[0] == token]:
            self.pools.pop(key).close()

    # --- WebSocket ------------------------------------------------------------------------
    async def websocket(self, scope, receive, send):
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if not rules.same_origin(scope):  # a page of another site must not open the user's session
            return await send({"type": "websocket.close", "code": 4403})
        token = self.host_token(scope)
        if token is not None:
            outcome, target, _user, rest = await self.resolve_host(scope, token)
        elif self._host_pattern() is not None:
            outcome = "not_found"  # sessions are served on their own hosts only
        else:
            outcome, target, _user, rest = await self.resolve(scope)
        if outcome != "go" or target["state"] != "ready":
            return await send({"type": "websocket.close", "code": 4404 if outcome != "go" else 4410})
        try:
            upstream = await self._open_upstream(scope, target, rest)
        except (TimeoutError, OSError, InvalidHandshake) as exc:
            log.info("interactive proxy: websocket to job %s refused: %s", target["job_id"], exc)
            code = 4000 + exc.response.status_code if isinstance(exc, InvalidStatus) else 1011
            return await send({"type": "websocket.close", "code": min(code, 4999)})
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
        await _relay(receive, send, upstream)

    async def _open_upstream(self, scope: dict, target: dict, rest: str):
        prefix, strip = target["prefix"], target["strip_prefix"]
        path = rest if strip else prefix.rstrip("/") + rest
        query = scope.get("query_string") or b""
        host = rules.header(scope, b"host") or "localhost"
        uri = f"ws://{host}{path}" + ("?" + query.decode("latin-1") if query else "")
        options = {
            "origin": rules.header(scope, b"origin") or None,
            "subprotocols": scope.get("subprotocols") or None,
            "additional_headers": rules.forward_headers(scope, prefix=prefix, drop=_WS_HANDSHAKE),
            "user_agent_header": rules.header(scope, b"user-agent") or None,
            "compression": None,  # the proxy passes messages on; compressing twice only costs CPU
            "max_size": None,
            "ping_interval": None,  # the browser and the server keep their own connection alive
            "proxy": None,
            "open_timeout": 10,
        }
        kind, where, port = split_address(target["address"])
        if kind == "unix":
            return await ws_unix_connect(where, uri, **options)
        return await ws_connect(uri, host=where, port=port, **options)


async def _relay(receive, send, upstream) -> None:
    """Pass messages both ways until either side closes; the other side gets the same close code."""

    async def from_client() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                data = message.get("text")
                await upstream.send(data if data is not None else message.get("bytes") or b"")
            elif message["type"] == "websocket.disconnect":
                code = message.get("code", 1000)
                await upstream.close(code=1000 if code in _RESERVED_CLOSE or not 1000 <= code < 5000 else code)
                return

    async def from_server() -> None:
        try:
            async for data in upstream:
                key = "text" if isinstance(data, str) else "bytes"
                await send({"type": "websocket.send", key: data})
        except ConnectionClosed:
            pass
        code = upstream.close_code or 1000
        await send({"type": "websocket.close", "code": 1000 if code in _RESERVED_CLOSE else code})

    tasks = [asyncio.ensure_future(from_client()), asyncio.ensure_future(from_server())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()


async def _request_body(receive, done: asyncio.Event) -> AsyncIterator[bytes]:
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise OSError("the client went away while sending the request")
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body"):
                return
    finally:
        done.set()


async def _wait_disconnect(receive, body_done: asyncio.Event) -> None:
    """Returns when the client disconnects (after the request body, which belongs to the forwarder)."""
    await body_done.wait()
    while (await receive())["type"] != "http.disconnect":
        pass


def _raw_path(scope: dict) -> str:
    return (scope.get("raw_path") or quote(scope["path"]).encode()).decode("latin-1").split("?", 1)[0]


def _with_query(path: str, scope: dict) -> str:
    query = (scope.get("query_string") or b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def _enter_url(scope: dict, token: str, user_id: int, rest: str) -> str:
    """Where the platform sends a signed-in user: the session's own host, with a ticket valid for a minute."""
    ticket = quote(rules.ticket_for(user_id, token), safe="")
    following = quote(_with_query(rest, scope), safe="")
    return f"{rules.session_origin(token, scope)}{rules.ENTER_PATH}?ticket={ticket}&next={following}"


def _platform_url(token: str, path: str, scope: dict) -> str:
    """The session's address on the platform, which checks who the user is and sends them back with a ticket."""
    return f"{settings.ACC_INTERACTIVE_BASE_URL}{PREFIX}{token}{_with_query(path, scope)}"


# --- our own answers -------------------------------------------------------------------------
async def _page(
    send, status: int, title: str, detail: str, *, job_id=None, state="", refresh=0, extra=(), platform: str = ""
):
    """One of our own pages. `platform` starts its links where a relative one would stay on the session's origin
    (the job page and the stylesheet are the platform's)."""
    context = {"title": title, "detail": detail, "job_id": job_id, "platform": platform, "state": state}
    body = render_to_string("interactive/interactive_state.html", {**context, "refresh": refresh}).encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *own_page_headers(platform=platform),  # our page: the platform's CSP (a session's own pages get none)
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _not_found(send, platform: str = "") -> None:
    await _page(
        send,
        404,
        "Not found",
        "There is no interactive session here, or you have no access to it.",
        state="missing",
        platform=platform,
    )


async def _state_page(send, target: dict, platform: str = "") -> None:
    if target["state"] == "over":
        await _page(
            send,
            410,
            "This interactive session is over",
            "The session has ended: its server was stopped and this address no longer leads to it. "
            "The job page keeps its log and outputs.",
            job_id=target["job_id"],
            state="over",
            platform=platform,
        )
    else:
        await _page(
            send,
            503,
            "The session is starting",
            "The server inside the job does not accept connections yet; this page reloads until it does.",
            job_id=target["job_id"],
            state="starting",
            refresh=2,
            extra=[(b"retry-after", b"2")],
            platform=platform,
        )


async def _redirect(send, location: str, *, extra=()) -> None:
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0"), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": 302, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": b""})


def proxy_application():
    """The ASGI app of `manage.py serve_proxy`: sessions only; any other path is a 404 of ours."""
    proxy = InteractiveProxy(standalone=True)

    async def application(scope, receive, send):
        if scope["type"] in ("http", "websocket") and proxy.handles(scope):
            return await proxy(scope, receive, send)
        if scope["type"] == "http":
            return await _not_found(send, settings.ACC_PLATFORM_URL)
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 4404})

    return application

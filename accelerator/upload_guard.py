"""Request bodies before Django: a body too large is refused from its headers; uploads stream to their view.

Django's ASGI handler reads a request's whole body (into a temporary file)
before any middleware or view runs, so even a refusal (no credentials, no
permission) would come only after the last byte. `BodyGuard`, in front of it:

- refuses a body longer than its route allows with 413 from its
  Content-Length, before reading it; a body sent without a length (chunked)
  is counted as it arrives and cut off with 413 past the limit. Uploads
  (UPLOAD_ROUTES) may have up to ACC_MAX_UPLOAD_BYTES, every other request
  up to DATA_UPLOAD_MAX_MEMORY_SIZE. For uploads sent chunked, the service
  that stores them counts (files/storage.py `spool`).
- hands an upload's body to Django unread (`StreamedBody`): the view's
  thread pulls it from the server as it stores it. Authentication and
  permissions run in the view as for any request, so a refusal is answered
  before the body is read, and an accepted upload flows to storage in
  bounded memory.

This needs a server that passes the body on as it arrives and stops reading
the socket while the application asks for no more: uvicorn
(`manage.py serve_web`). daphne receives the whole body before it calls the
application. A view on an upload route must be synchronous: it reads the
body from its own thread.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import deque

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.exceptions import BadRequest
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, resolve

# (method, URL name) of the requests whose body is a file; their views read it as a stream.
UPLOAD_ROUTES = {
    ("PUT", "files"),  # project files (also the file explorer's uploads)
    ("PUT", "files-jobstore-upload"),  # accli's jobstore objects, authorised by the signed URL
    ("POST", "web-hosted"),  # a hosted model's launch form with input files
    ("POST", "web-hosted-widget"),
    ("POST", "xet-xorb"),  # accli copy: xorbs (verified as they stream in) and shards
    ("POST", "xet-shard"),
}
PULL = 4 * 1024 * 1024  # about what one pull gathers for the view's thread; as much is read ahead meanwhile


class BodyGuard:
    """ASGI middleware for Django's HTTP requests; see the module's docstring."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        headers = dict(scope["headers"]) if scope["type"] == "http" else {}
        if b"content-length" not in headers and b"transfer-encoding" not in headers:
            return await self.app(scope, receive, send)  # no body
        upload = _is_upload(scope)
        limit = settings.ACC_MAX_UPLOAD_BYTES if upload else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await _too_large(send, upload, limit, f"is {int(length)} bytes")
        if upload:
            body = StreamedBody(receive)
            return await self.app(scope, body, body.closing(send))
        return await self.app(scope, *_counted(receive, send, limit))


def _is_upload(scope) -> bool:
    path = scope["path"].removeprefix(scope.get("root_path", ""))
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return (scope["method"], match.url_name) in UPLOAD_ROUTES


async def _too_large(send, upload: bool, limit: int, what: str) -> None:
    if upload:
        detail = (
            f"The upload {what}; uploads may have at most {limit} bytes (ACC_MAX_UPLOAD_BYTES). "
            "Send a smaller file, or ask the operator to raise the limit."
        )
    else:
        detail = (
            f"The request body {what}; this endpoint accepts at most {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE). "
            "Upload files with PUT /api/v1/projects/<slug>/files/<path>."
        )
    body = json.dumps({"detail": detail, "code": "too_large"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 413, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _counted(receive, send, limit: int):
    """(receive, send) that count the body as it arrives; past `limit`, 413 and the app sees a disconnect."""
    seen, started, refused = 0, False, False

    async def counting_receive():
        nonlocal seen, refused
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit and not started:
                refused = True
                await _too_large(send, False, limit, f"has more than {limit} bytes")
                return {"type": "http.disconnect"}
        return message

    async def guarded_send(message):
        nonlocal started
        if not refused:
            started = True
            await send(message)

    return counting_receive, guarded_send


class StreamedBody:
    """The `receive` of an upload: Django's handler reads nothing from it up front; the view pulls the body."""

    def __init__(self, receive):
        self._receive = receive
        self._ended = asyncio.Event()  # read to its end, or the client left
        self._ahead: asyncio.Future | None = None  # the next parts, gathered while the view stores these

    async def __call__(self):
        # Django listens for a disconnect while the view runs; the body belongs to the view until it ends.
        await self._ended.wait()
        return await self._receive()

    async def pull(self) -> list[bytes]:
        """The body's next parts as the server received them, about PULL bytes ([] at the end).

        The parts are handed on as they are, not joined (no copy), and the
        next ones are gathered while the view's thread stores these.
        """
        parts = await (self._ahead or self._gather())
        self._ahead = None
        if parts and not self._ended.is_set():
            self._ahead = asyncio.ensure_future(self._gather())
            self._ahead.add_done_callback(lambda ahead: ahead.cancelled() or ahead.exception())  # seen if unused
        return parts

    async def _gather(self) -> list[bytes]:
        parts, got = [], 0
        while got < PULL and not self._ended.is_set():
            message = await self._receive()
            if message["type"] != "http.request":
                self._ended.set()
                raise BadRequest("The client closed the connection before the whole body arrived.")
            if not message.get("more_body", False):
                self._ended.set()
            if body := message.get("body", b""):
                parts.append(body)
                got += len(body)
        return parts

    def closing(self, send):
        """`send` that closes the connection after an answer given before the body was read to its end."""

        async def closing_send(message):
            if message["type"] == "http.response.start" and not self._ended.is_set():
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        return closing_send


class BodyReader:
    """An upload's body as the file object Django reads `request` from; read by the view's thread.

    Like a socket or a raw file, `read(n)` answers what has arrived, at most
    n bytes, and b"" only at the end: a part of the body that fits is handed
    on whole, never copied. One pull from the event loop (a thread hop)
    brings about PULL bytes.
    """

    def __init__(self, body: StreamedBody):
        self._body = body
        self._parts: deque[bytes] = deque()  # pulled, not read yet; the first one from offset `_at`
        self._at = 0
        self._ended = False

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self._piece(sys.maxsize), b""))
        return self._piece(size)

    def readline(self, size: int | None = -1) -> bytes:
        """A line, or at most PULL bytes of a longer one (so a body without newlines never fills memory)."""
        wanted = min(PULL, sys.maxsize if size is None or size < 0 else size)
        line = b""
        while len(line) < wanted and not line.endswith(b"\n"):
            piece = self._piece(wanted - len(line), upto=b"\n")
            if not piece:
                break
            line += piece
        return line

    def __iter__(self):
        return iter(self.readline, b"")

    def close(self) -> None:
        self._parts.clear()

    def _piece(self, size: int, upto: bytes = b"") -> bytes:
        """At most `size` bytes of the first part (ending at `upto` if it comes first); b"" at the body's end."""
        while not self._parts:
            if self._ended:
                return b""
            pulled = async_to_sync(self._body.pull)()
            self._parts.extend(pulled)
            self._ended = not pulled
        part, start = self._parts[0], self._at
        end = min(len(part), start + size)
        if upto and (found := part.find(upto, start, end)) >= 0:
            end = found + len(upto)
        if end == len(part):
            self._parts.popleft()
            self._at = 0
        else:
            self._at = end
        return part if start == 0 and end == len(part) else part[start:end]


class StreamingASGIHandler(ASGIHandler):
    """Django's ASGI handler, except that an upload's body (a StreamedBody) is not read before the view."""

    async def read_body(self, receive):
        if isinstance(receive, StreamedBody):
            return BodyReader(receive)
        return await super().read_body(receive)

"""The proxy's HTTP/1.1 client for a session's server: an asyncio protocol that parses with httptools.

Why not a general-purpose client: the proxy forwards one request at a time
per connection and streams both bodies, and on a 2-CPU machine the cost per
request decides how many requests a session gets. A general client spends
most of its time on machinery the proxy does not need (redirects, decoding,
per-request setup). Here a connection is an `asyncio.Protocol` whose bytes
go straight into httptools (llhttp, the parser Node.js uses), which does the
framing (content length, chunked bodies, keep-alive) and rejects what is not
HTTP/1.1; bodies that run to the end of the connection, HEAD answers and 1xx
answers are handled here.

One `Pool` per session: a few idle connections to its TCP address or Unix
socket, reused while the server keeps them open. A request without a body
that fails on a reused connection before any answer is tried once more on a
fresh one (the server closed the idle connection under us).

Back-pressure both ways: a request body waits while the server does not
read, and a server that sends faster than the client reads is paused once
BUFFER_LIMIT bytes are waiting.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httptools

from backends.sockets import split_address

CONNECT_TIMEOUT = 10.0
BUFFER_LIMIT = 256 * 1024
_UNSAFE = re.compile(rb"[\r\n\0]")  # a field that could end the head early (the ASGI server never passes one)


class UpstreamError(OSError):
    """The server broke the exchange (refused, closed early, or spoke something that is not HTTP/1.1)."""


class Response:
    """The head of the server's final answer."""

    __slots__ = ("status_code", "headers")

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]]):
        self.status_code, self.headers = status_code, headers


class Connection(asyncio.Protocol):
    """One connection to the server, one exchange at a time."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.error: Exception | None = None
        self._can_write: asyncio.Future | None = None
        self._reading_paused = False
        self._waiter: asyncio.Future | None = None
        self._active = False  # an exchange is under way (bytes between exchanges make the connection unusable)
        self.head: Response | None = None
        self.complete = self.keep_alive = self._to_eof = False
        self._chunks: list[bytes] = []

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self._active:
            self._fail(UpstreamError("the server sent data nobody asked for"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamError("the server switched protocols on a plain HTTP request"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"the server's answer is not valid HTTP/1.1: {exc}"))

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self._active and self.head is not None and not self.complete and self._to_eof:
            self.complete, self.keep_alive = True, False  # a body without a length ends with the connection
        elif self._active and not self.complete and self.error is None:
            self.error = UpstreamError("the server closed the connection before answering")
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._wake()

    def pause_writing(self) -> None:
        self._can_write = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None

    # --- httptools callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:  # more after the whole answer: the server does not speak HTTP/1.1 as it should
            self._fail(UpstreamError("the server sent more than one answer"))
        self._headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.error is not None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue, 103 Early Hints...: the final answer follows
            self._informational = True
            return
        self.head = Response(status, self._headers)
        names = {name for name, _ in self._headers}
        no_body = self._method == b"HEAD" or status in (204, 304)
        self._to_eof = not no_body and b"content-length" not in names and b"transfer-encoding" not in names
        if self._method == b"HEAD":  # llhttp would wait for the body the length announces; there is none
            self.complete, self.keep_alive = True, self.parser.should_keep_alive()
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.error is not None:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > BUFFER_LIMIT and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.error is not None:
            return
        if self._informational:
            self._informational = False
            return
        self.complete, self.keep_alive = True, self.parser.should_keep_alive()
        self._wake()

    # --- the exchange ------------------------------------------------------------------------------
    def _begin(self, method: bytes) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self._method, self._headers, self._informational = method, [], False
        self.head = None
        self.complete = self.keep_alive = self._to_eof = False
        self._chunks = []
        self._buffered = 0
        self._active = True

    async def request(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: AsyncIterator[bytes] | None
    ) -> Response:
        """Send the request (streaming `body`, chunked unless `headers` give its length) and return the head of
        the final answer."""
        if self.closed or self.error is not None:
            raise UpstreamError("the connection to the server is closed")
        self._begin(method)
        lines = [method, b" ", target, b" HTTP/1.1\r\n"]
        chunked = body is not None
        for name, value in headers:
            if _UNSAFE.search(name) or _UNSAFE.search(value):
                raise UpstreamError(f"refusing to forward a header with a line break: {name!r}")
            if name == b"transfer-encoding" or (name == b"content-length" and body is not None):
                continue  # the framing of a body is ours to say (a length without one passes: POST, 0)
            lines += (name, b": ", value, b"\r\n")
        sized = next((v for n, v in headers if n == b"content-length"), None) if body is not None else None
        if sized is not None:
            chunked = False
            lines += (b"content-length: ", sized, b"\r\n")
        elif chunked:
            lines.append(b"transfer-encoding: chunked\r\n")
        if _UNSAFE.search(target) or b" " in target:
            raise UpstreamError("refusing to forward a request target with spaces or line breaks")
        lines.append(b"\r\n")
        self.transport.write(b"".join(lines))  # most requests are this one write
        if body is not None:
            async for chunk in body:
                if chunk:
                    self.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    await self._drain()
            if chunked:
                self.transport.write(b"0\r\n\r\n")
            await self._drain()
        while self.head is None:
            await self._wait()
        return self.head

    async def body(self) -> AsyncIterator[tuple[bytes, bool]]:
        """(chunk, last) as the body arrives. What already arrived is passed on in one piece, and `last` says
        so when the end came with it (a small page is then one message to the client); a chunk is never held
        back for data still to come, so a streamed answer flows as the server sends it."""
        while True:
            if self._chunks:
                data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
                self._chunks.clear()
                self._buffered = 0
                if self._reading_paused and not self.closed:
                    self._reading_paused = False
                    self.transport.resume_reading()
                yield data, self.complete
                if self.complete:
                    return
                continue
            if self.complete:
                yield b"", True
                return
            await self._wait()

    async def _wait(self) -> None:
        if self.error is not None:
            raise self.error
        self._waiter = self.loop.create_future()
        await self._waiter
        if self.error is not None and not (self.complete and not self._chunks):
            raise self.error

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _drain(self) -> None:
        if self.closed:
            raise self.error or UpstreamError("the server closed the connection while the request was sent")
        if self._can_write is not None:
            await self._can_write

    def _fail(self, error: Exception) -> None:
        self.error = self.error or error
        self.close()
        self._wake()

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def finish(self) -> None:
        """The exchange is over: bytes arriving from now on are a fault."""
        self._active = False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Kept-alive connections to one session's server."""

    def __init__(self, address: str, *, max_idle: int = 16):
        self.kind, self.where, self.port = split_address(address)
        self.max_idle = max_idle
        self.idle: list[Connection] = []

    async def _open(self) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            if self.kind == "unix":
                opening = loop.create_unix_connection(Connection, self.where)
            else:
                opening = loop.create_connection(Connection, self.where, self.port)
            _transport, conn = await asyncio.wait_for(opening, CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to the session's server: {exc}") from exc
        return conn

    async def _take(self) -> Connection:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed and conn.error is None:
                conn.reused = True
                return conn
            conn.close()
        return await self._open()

    async def request(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: AsyncIterator[bytes] | None
    ) -> tuple[Connection, Response]:
        conn = await self._take()
        try:
            return conn, await conn.request(method, target, headers, body)
        except OSError as exc:
            conn.close()
            if not conn.reused or body is not None:
                raise exc if isinstance(exc, UpstreamError) else UpstreamError(str(exc)) from exc
        conn = await self._open()  # an idle connection the server had closed: once more on a fresh one
        try:
            return conn, await conn.request(method, target, headers, None)
        except OSError as exc:
            conn.close()
            raise exc if isinstance(exc, UpstreamError) else UpstreamError(str(exc)) from exc

    def release(self, conn: Connection) -> None:
        """Back to the pool if the exchange ended cleanly and the server keeps the connection open."""
        conn.finish()
        if conn.reusable and len(self.idle) < self.max_idle:
            conn.reused = False
            self.idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()

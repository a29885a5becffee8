"""The proxy's HTTP/1.1 client for a session's server: h11 over asyncio streams, connections kept alive.

Why not a general-purpose client: the proxy forwards one request at a time
per connection and streams both bodies, and on a 2-CPU machine the cost per
request decides how many requests a session gets. A general client spends
most of its time on machinery the proxy does not need (per-request async
library detection, locks, redirects, decoding); h11 does the HTTP framing
(chunked bodies, keep-alive, HEAD, bodies that run to the end of the
connection) and nothing else, and it validates what the server sends.

One `Pool` per session: a few idle connections to its TCP address or Unix
socket, reused while the server keeps them open. A request without a body
that fails on a reused connection before any answer is tried once more on a
fresh one (the server closed the idle connection under us).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import h11

from workers.backends.sockets import split_address

READ_SIZE = 64 * 1024
CONNECT_TIMEOUT = 10.0


class UpstreamError(OSError):
    """The server broke the exchange (refused, closed early, or spoke something that is not HTTP/1.1)."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, reused: bool = False):
        self.reader, self.writer, self.reused = reader, writer, reused
        self.h11 = h11.Connection(our_role=h11.CLIENT)

    async def request(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: AsyncIterator[bytes] | None
    ) -> h11.Response:
        """Send the request (streaming `body`) and return the final response head (1xx answers are skipped)."""
        try:
            head = self.h11.send(h11.Request(method=method, target=target, headers=headers))
            if body is None:  # one write: most requests are a head alone
                self.writer.write(head + self.h11.send(h11.EndOfMessage()))
            else:
                self.writer.write(head)
                async for chunk in body:
                    self.writer.write(self.h11.send(h11.Data(data=chunk)))
                    await self.writer.drain()
                self.writer.write(self.h11.send(h11.EndOfMessage()))
            await self.writer.drain()
            while True:
                event = await self._next()
                if isinstance(event, h11.Response):
                    return event
                if not isinstance(event, h11.InformationalResponse):
                    raise UpstreamError(f"unexpected answer from the server: {event!r}")
        except h11.ProtocolError as exc:
            raise UpstreamError(f"the server's answer is not valid HTTP/1.1: {exc}") from exc

    async def body(self) -> AsyncIterator[tuple[bytes, bool]]:
        """(chunk, last) as the body arrives. `last` is known without waiting: when the end of the body came
        in the same read, the final chunk says so (a small page is then one message to the client); a chunk
        is never held back for data still to come, so a streamed answer flows as the server sends it."""
        try:
            event = await self._next()
            while True:
                if isinstance(event, h11.EndOfMessage):
                    yield b"", True
                    return
                if not isinstance(event, h11.Data):
                    raise UpstreamError(f"unexpected event in the response body: {event!r}")
                data = bytes(event.data)
                following = self.h11.next_event()  # from what was already read; never waits
                if isinstance(following, h11.EndOfMessage):
                    yield data, True
                    return
                yield data, False
                event = await self._next() if following is h11.NEED_DATA else following
        except h11.ProtocolError as exc:
            raise UpstreamError(f"the server's answer is not valid HTTP/1.1: {exc}") from exc

    async def _next(self):
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(READ_SIZE)
                self.h11.receive_data(data)  # b"" = the server closed: h11 ends a read-to-close body
                continue
            if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                raise UpstreamError("the server closed the connection before answering")
            return event

    @property
    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Kept-alive connections to one session's server."""

    def __init__(self, address: str, *, max_idle: int = 16):
        self.kind, self.where, self.port = split_address(address)
        self.max_idle = max_idle
        self.idle: list[Connection] = []

    async def _open(self) -> Connection:
        try:
            if self.kind == "unix":
                opening = asyncio.open_unix_connection(self.where, limit=READ_SIZE)
            else:
                opening = asyncio.open_connection(self.where, self.port, limit=READ_SIZE)
            reader, writer = await asyncio.wait_for(opening, CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to the session's server: {exc}") from exc
        return Connection(reader, writer)

    async def _take(self) -> Connection:
        while self.idle:
            conn = self.idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                conn.reused = True
                return conn
            conn.close()
        return await self._open()

    async def request(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: AsyncIterator[bytes] | None
    ) -> tuple[Connection, h11.Response]:
        conn = await self._take()
        try:
            return conn, await conn.request(method, target, headers, body)
        except (UpstreamError, OSError, asyncio.IncompleteReadError) as exc:
            conn.close()
            if not conn.reused or body is not None:
                raise UpstreamError(str(exc)) from exc
        conn = await self._open()  # an idle connection the server had closed: once more on a fresh one
        try:
            return conn, await conn.request(method, target, headers, None)
        except (OSError, asyncio.IncompleteReadError) as exc:
            conn.close()
            raise UpstreamError(str(exc)) from exc

    def release(self, conn: Connection) -> None:
        """Back to the pool if the exchange ended cleanly and the server keeps the connection open."""
        if conn.reusable and len(self.idle) < self.max_idle:
            conn.h11.start_next_cycle()
            conn.reused = False
            self.idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()

"""The proxy's HTTP/1.1 client (workers/upstream.py) against real servers on real sockets, one answer shape each.

Each test starts a tiny asyncio server that answers with exact bytes, so the framing the proxy must follow
(lengths, chunks, bodies that end with the connection, HEAD, 1xx, closed idle connections) is spelled out.
"""

from __future__ import annotations

import asyncio

import pytest

from interactive.upstream import Pool, UpstreamError


class Server:
    """Answers each request on a connection with the next of `answers` (bytes, or a callable of the request)."""

    def __init__(self, *answers, close_after: bool = False):
        self.answers, self.close_after = list(answers), close_after
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.address = f"tcp://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                body = b""
                if b"transfer-encoding: chunked" in head.lower():
                    body = await reader.readuntil(b"0\r\n\r\n")
                elif b"content-length:" in head.lower():
                    size = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    body = await reader.readexactly(size)
                self.requests.append(head + body)
                answer = self.answers.pop(0)
                for part in answer if isinstance(answer, list) else [answer]:
                    if isinstance(part, float):
                        await asyncio.sleep(part)
                    else:
                        writer.write(part)
                        await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


async def exchange(pool: Pool, method: bytes = b"GET", body=None, headers=()):
    conn, response = await pool.request(method, b"/x", [(b"host", b"h"), *headers], body)
    chunks = [(chunk, last) async for chunk, last in conn.body()]
    pool.release(conn)
    return response, chunks


def text(chunks) -> bytes:
    return b"".join(chunk for chunk, _ in chunks)


async def test_a_kept_alive_connection_serves_the_next_request():
    page = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: A\r\n\r\nhello"
    async with Server(page, page) as server:
        pool = Pool(server.address)
        first, chunks = await exchange(pool)
        assert first.status_code == 200 and (b"x-thing", b"A") in first.headers, "names lower-cased, values kept"
        assert chunks == [(b"hello", True)], "a small page is one message with its end"
        second, chunks = await exchange(pool)
        assert second.status_code == 200 and text(chunks) == b"hello"
        assert server.connections == 1


async def test_a_chunked_answer_is_passed_on_as_it_arrives():
    parts = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n", 0.3, b"6\r\nsecond\r\n0\r\n\r\n"]
    async with Server(parts) as server:
        pool = Pool(server.address)
        conn, _ = await pool.request(b"GET", b"/", [(b"host", b"h")], None)
        loop = asyncio.get_running_loop()
        started, seen = loop.time(), []
        async for chunk, last in conn.body():
            seen.append((chunk, last, loop.time() - started))
        assert seen[0][:2] == (b"first", False) and seen[0][2] < 0.2, "not held back for the rest"
        assert b"".join(c for c, _, _ in seen) == b"firstsecond" and seen[-1][1] is True


async def test_a_body_without_a_length_ends_with_the_connection_which_is_not_reused():
    async with Server(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", close_after=True) as server:
        pool = Pool(server.address)
        response, chunks = await exchange(pool)
        assert response.status_code == 200 and text(chunks) == b"until the end" and chunks[-1][1] is True
        assert pool.idle == []


async def test_head_and_no_content_answers_have_no_body_and_keep_the_connection():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"
    empty = b"HTTP/1.1 204 No Content\r\n\r\n"
    page = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with Server(head, empty, page) as server:
        pool = Pool(server.address)
        response, chunks = await asyncio.wait_for(exchange(pool, b"HEAD"), 5)
        assert response.status_code == 200 and text(chunks) == b""
        response, chunks = await asyncio.wait_for(exchange(pool), 5)
        assert response.status_code == 204 and text(chunks) == b""
        response, chunks = await exchange(pool)
        assert text(chunks) == b"ok" and server.connections == 1


async def test_informational_answers_are_skipped_for_the_final_one():
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nmade"
    async with Server(answer) as server:
        response, chunks = await exchange(Pool(server.address))
        assert response.status_code == 201 and text(chunks) == b"made"


async def test_request_bodies_are_streamed_chunked_unless_their_length_is_given():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    async def body():
        yield b"abc"
        yield b""
        yield b"defgh"

    async with Server(ok, ok) as server:
        pool = Pool(server.address)
        await exchange(pool, b"POST", body())
        await exchange(pool, b"POST", body(), headers=[(b"content-length", b"8")])
        chunked, sized = server.requests
        assert chunked.endswith(b"\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n")
        assert sized.endswith(b"\r\n\r\nabcdefgh") and b"transfer-encoding" not in sized.lower()


async def test_an_idle_connection_the_server_closed_is_replaced_without_the_client_noticing():
    page = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with Server(page, page, close_after=True) as server:
        pool = Pool(server.address)
        await exchange(pool)
        await asyncio.sleep(0.1)  # the server has closed the connection the pool keeps
        response, chunks = await exchange(pool)
        assert response.status_code == 200 and text(chunks) == b"ok" and server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [b"SSH-2.0-OpenSSH_9.2\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", b""],
    ids=["not-http", "cut-short", "closed-at-once"],
)
async def test_a_server_that_breaks_the_exchange_is_an_upstream_error(answer):
    async with Server(answer, close_after=True) as server:
        with pytest.raises(UpstreamError):
            await asyncio.wait_for(exchange(Pool(server.address)), 5)


async def test_nothing_listening_and_line_breaks_in_headers_are_upstream_errors():
    async with Server() as server:
        address = server.address
    with pytest.raises(UpstreamError, match="cannot connect"):
        await exchange(Pool(address))
    async with Server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as server:
        with pytest.raises(UpstreamError, match="line break"):
            await exchange(Pool(server.address), headers=[(b"x-evil", b"a\r\nx-injected: 1")])
        assert server.requests == []

"""Streamed response bodies that stay streamed under ASGI.

Django's ASGI handler reads a *synchronous* iterator of a StreamingHttpResponse
into a list before it sends the first byte, so a download of a 64 MiB xorb
range or a large project file would sit whole in the web process's memory.
Under ASGI (our server, uvicorn) the pieces are therefore pulled one at a time
from a worker thread by an asynchronous generator; under WSGI the plain
iterator is used as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async


def body(request, pieces: Iterator[bytes]) -> Iterator[bytes] | AsyncIterator[bytes]:
    """`pieces` in the form the server in front of `request` streams without buffering."""
    if not hasattr(request, "scope"):  # a WSGI request
        return pieces
    return _pull(iter(pieces))


async def _pull(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    step = sync_to_async(next, thread_sensitive=False)
    try:
        while (piece := await step(pieces, None)) is not None:
            yield piece
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=False)()


def file_pieces(handle, size: int = 1024 * 1024) -> Iterator[bytes]:
    """An open binary file read in pieces of `size` bytes."""
    return iter(lambda: handle.read(size), b"")

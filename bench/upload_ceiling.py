"""Bare ASGI apps for bench/upload.py: what uvicorn alone reaches with an upload's body, without Django.

Served by uvicorn with the flags of `manage.py serve_web` (uvloop, httptools);
`ACC_CEILING` chooses what is done with the body, in `ACC_CEILING_DIR`:

- drain: read it and drop it (the server and the client, nothing else);
- file: write it to a file from the event loop;
- sha256: hash it (SHA-256) and write it, from the event loop;
- thread: hash and write it in a worker thread, one hop per PULL bytes
  while the loop reads on (the platform's shape: its view stores the body
  from a thread).

Each answers 201 with the byte count; the file is removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile

MODE = os.environ.get("ACC_CEILING", "drain")
FOLDER = os.environ.get("ACC_CEILING_DIR") or tempfile.gettempdir()
PULL = 4 * 1024 * 1024


def store(fd: int, hasher, parts: list[bytes]) -> None:
    for part in parts:  # each part hashed and written while it is in the CPU's cache (one writev is slower)
        hasher.update(part)
        os.write(fd, part)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    fd, path = tempfile.mkstemp(prefix="ceiling-", dir=FOLDER)
    hasher, size, parts, gathered, storing, more = hashlib.sha256(), 0, [], 0, None, True
    try:
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body, more = message.get("body", b""), message.get("more_body", False)
            size += len(body)
            if MODE == "file":
                os.write(fd, body)
            elif MODE == "sha256":
                hasher.update(body)
                os.write(fd, body)
            elif MODE == "thread":
                parts.append(body)
                gathered += len(body)
                if gathered >= PULL or not more:
                    if storing:
                        await storing
                    storing = asyncio.get_running_loop().run_in_executor(None, store, fd, hasher, parts)
                    parts, gathered = [], 0
        if storing:
            await storing
    finally:
        os.close(fd)
        os.unlink(path)
    answer = b'{"size": %d}' % size
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": answer})

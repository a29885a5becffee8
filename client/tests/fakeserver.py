"""A recording HTTP server for the client's tests (the real platform is tested end to end elsewhere).

Routes answer (status, body) for an exact method + path (query string
included when the route names one, a trailing '*' matches a prefix); every request is recorded with its
headers and raw body so tests can assert exactly what the client sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


REFRESH = "refresh-0"  # the refresh token every test login starts with
Answer = tuple[int, object]  # (status, JSON value or raw bytes)


class FakeServer:
    def __init__(self):
        self.requests: list[Request] = []
        self.routes: dict[tuple[str, str], Callable[[Request], Answer]] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.requests.append(req)
                route = server.find(self.command, self.path)
                status, payload = route(req) if route else (404, {"detail": f"no route {self.command} {self.path}"})
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type", "application/octet-stream" if isinstance(payload, bytes) else "application/json"
                )
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def route(self, method: str, path: str, status: int = 200, body: object = None, *, handler=None) -> None:
        self.routes[(method, path)] = handler or (lambda _req: (status, body))

    def find(self, method: str, path: str):
        """Exact path with query, then exact path, then the longest route ending in '*' that prefixes it."""
        bare = urlsplit(path).path
        found = self.routes.get((method, path)) or self.routes.get((method, bare))
        if found:
            return found
        prefixes = [p for m, p in self.routes if m == method and p.endswith("*") and bare.startswith(p[:-1])]
        return self.routes[(method, max(prefixes, key=len))] if prefixes else None

    def sent(self, method: str | None = None, prefix: str = "") -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and r.path.startswith(prefix)]

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def stored(path: Path) -> dict:
    """The token file as JSON, to assert TinyDB's exact layout."""
    return json.loads(path.read_text())

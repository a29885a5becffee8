"""HTTP to the Accelerator API as accli speaks it: `x-authorization: <access token>`.

Why not plain requests calls: idempotent GET/PUT are retried on 408/429/5xx
and dropped connections (as accli does), an expired access token is renewed
once from the stored login (so `acc logs -f` survives long jobs), error
bodies `{"detail": ...}` become one readable line, and the token is never
sent to another host (presigned upload URLs, redirects to object storage).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests

from acc_client.errors import AccError, ApiError

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
TIMEOUT = (10, 120)


class Api:
    """One server, one login; `token` returns the access token, `renew` exchanges a new one."""

    def __init__(
        self,
        server_url: str,
        *,
        token: Callable[[], str],
        renew: Callable[[], str] | None = None,
        session: requests.Session | None = None,
        attempts: int = 5,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.server_url = server_url.rstrip("/")
        self._token, self._renew = token, renew
        self.session = session or requests.Session()
        # Like accli: ACCLI_DEBUG turns TLS verification off for test servers with self-signed certificates.
        self.session.verify = not os.environ.get("ACCLI_DEBUG")
        self.attempts, self.backoff, self.sleep = attempts, backoff, sleep

    def url(self, path: str) -> str:
        """API paths hang below the stored server URL, as in accli; absolute URLs stay as they are."""
        return path if urlsplit(path).scheme else self.server_url + path

    def _ours(self, url: str) -> bool:
        return urlsplit(url).netloc == urlsplit(self.server_url).netloc

    # --- JSON calls --------------------------------------------------------------
    def get_json(self, path: str, params: dict | None = None) -> Any:
        return self.call("GET", path, params=params).json()

    def post_json(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json=body).json()

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.check(self._authed(method, self.url(path), **kwargs))

    def _authed(self, method: str, url: str, **kwargs) -> requests.Response:
        """A call with the access token; a 401 renews the token once and repeats the call."""
        response = self._send(method, url, headers={"x-authorization": self._token()}, **kwargs)
        if response.status_code == 401 and self._renew is not None:
            response.close()
            response = self._send(method, url, headers={"x-authorization": self._renew()}, **kwargs)
        return response

    # --- jobstore and files ------------------------------------------------------
    def push_url(self, project: str, filename: str) -> str | None:
        """Where to PUT one jobstore object, or None if the server already has it (409)."""
        url = self.url(f"/api/v1/aterm-cli/{project}/jobstore-push-url/")
        response = self._authed("GET", url, params={"filename": filename})
        if response.status_code == 409:
            return None
        return self.check(response).json()

    def put(self, url: str, opener: Callable[[], IO[bytes]]) -> None:
        """PUT raw bytes to a signed URL, without credentials: the URL is the authorisation."""
        self.check(self._send("PUT", self.url(url), body=opener))

    def download(self, url: str, sink: Callable[[bytes], None]) -> None:
        """Stream a file; redirects to another host are followed without the token."""
        url = self.url(url)
        for _ in range(5):
            send = self._authed if self._ours(url) else self._send
            response = send("GET", url, stream=True, allow_redirects=False)
            if response.is_redirect:
                url = urljoin(url, response.headers["location"])
                continue
            with self.check(response):
                for block in response.iter_content(1 << 20):
                    sink(block)
            return
        raise AccError(f"too many redirects downloading {url}")

    # --- transport ---------------------------------------------------------------
    def _send(self, method: str, url: str, *, body: Callable[[], IO[bytes]] | None = None, **kwargs):
        retryable = method in ("GET", "PUT")
        for attempt in range(1, self.attempts + 1):
            try:
                if body is None:
                    response = self.session.request(method, url, timeout=TIMEOUT, **kwargs)
                else:
                    with body() as fh:  # reopened per attempt: a consumed stream cannot be re-sent
                        response = self.session.request(method, url, data=fh, timeout=TIMEOUT, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not retryable or attempt == self.attempts:
                    raise AccError(f"cannot reach {urlsplit(url).netloc}: {type(exc).__name__}") from None
            else:
                if not (retryable and response.status_code in RETRY_STATUS) or attempt == self.attempts:
                    return response
                response.close()
            self.sleep(min(self.backoff * 2 ** (attempt - 1), 8.0))
        raise AssertionError("unreachable")

    @staticmethod
    def check(response: requests.Response) -> requests.Response:
        if response.status_code < 400:
            return response
        try:
            body = response.json()
            detail = body.get("detail") if isinstance(body, dict) else None
            detail = str(detail) if detail else str(body)
        except ValueError:
            detail = response.text.strip() or response.reason or "error"
        detail = " ".join(detail.split())[:300]
        request = response.request
        raise ApiError(response.status_code, request.method or "", urlsplit(request.url).path, detail)

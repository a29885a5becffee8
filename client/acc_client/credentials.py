"""accli's stored login, reused: ~/.accli/data.json (TinyDB) holds the refresh token.

Refresh tokens are single-use: every exchange returns a new one and reusing
an old one revokes the whole login. So the rotated token is written back at
once, in TinyDB's layout with every other key kept, and atomically (temp
file + rename), so neither a crash nor a concurrent accli ever sees half a
file, and `accli` keeps working after `acc` ran.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import requests

from acc_client.errors import AccError, NotLoggedIn, SessionExpired

EXCHANGE_PATH = "/api/v1/oauth/device/access-token/"
_LOGIN_FIRST = "not logged in: run `accli login` first"


def db_path() -> Path:
    return Path(os.path.expanduser("~")) / ".accli" / "data.json"


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotLoggedIn(f"{_LOGIN_FIRST} (no {path})") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        raise AccError(f"{path} is not valid JSON; run `accli login` again") from None
    return data if isinstance(data, dict) else {}


def _first_document(data: dict) -> tuple[str, dict] | None:
    """accli uses the first document of TinyDB's default table."""
    table = data.get("_default")
    if not isinstance(table, dict):
        return None
    for doc_id, doc in table.items():
        if isinstance(doc, dict):
            return doc_id, doc
    return None


def _write_atomically(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)  # TinyDB's JSONStorage writes plain json.dumps output too
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.chmod(tmp, path.stat().st_mode & 0o777)
        except FileNotFoundError:
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Login:
    """The stored login of one user; `access_token()` exchanges (and rotates) it once per process."""

    def __init__(self, path: Path | None = None, session: requests.Session | None = None):
        self.path = path or db_path()
        found = _first_document(_read(self.path))
        if found is None or not found[1].get("token"):
            raise NotLoggedIn(f"{_LOGIN_FIRST} (no token in {self.path})")
        doc = found[1]
        self.server_url: str = (doc.get("server_url") or "").rstrip("/")
        if not self.server_url:
            raise NotLoggedIn(f"{_LOGIN_FIRST} (no server_url in {self.path})")
        self.session = session or requests.Session()
        self.session.verify = not os.environ.get("ACCLI_DEBUG")
        self._access: str | None = None
        self._lock = threading.Lock()  # upload threads share one login; one exchange at a time

    def access_token(self) -> str:
        with self._lock:
            if self._access is None:
                self._access = self._exchange()
            return self._access

    def renew(self) -> str:
        """A new access token after the server refused the current one (it expired)."""
        with self._lock:
            self._access = self._exchange()
            return self._access

    def _exchange(self) -> str:
        data = _read(self.path)  # re-read: accli may have logged in again meanwhile
        found = _first_document(data)
        refresh = found[1].get("token") if found else None
        if not refresh:
            raise NotLoggedIn(f"{_LOGIN_FIRST} (no token in {self.path})")
        try:
            response = self.session.post(
                self.server_url + EXCHANGE_PATH, json={"refresh_token": refresh}, timeout=(10, 60)
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise AccError(f"cannot reach {self.server_url}: {type(exc).__name__}") from None
        if response.status_code in (400, 401, 403):
            raise SessionExpired("session expired, run `accli login`")
        if response.status_code != 200:
            raise AccError(f"token exchange failed: HTTP {response.status_code} from POST {EXCHANGE_PATH}")
        try:
            body = response.json()
            access, rotated = body["access_token"], body.get("refresh_token")
        except (ValueError, KeyError, TypeError):
            raise AccError(f"token exchange failed: unexpected answer from POST {EXCHANGE_PATH}") from None
        if rotated and rotated != refresh:
            doc_id, doc = found
            data["_default"][doc_id] = {**doc, "token": rotated}
            _write_atomically(self.path, data)
        return access

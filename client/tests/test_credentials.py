"""Reusing accli's login: exchange, rotation written back in TinyDB's layout, clear failures."""

from __future__ import annotations

import json
import os

import pytest
from acc_client.api import Api
from acc_client.credentials import Login
from acc_client.errors import NotLoggedIn, SessionExpired
from fakeserver import REFRESH, stored


def test_exchange_posts_the_refresh_token_and_writes_the_rotated_one(server, accli_login):
    os.chmod(accli_login, 0o600)
    login = Login()
    assert login.access_token() == "access-1"
    assert login.access_token() == "access-1"  # one exchange per process

    (req,) = server.sent("POST")
    assert req.path == "/api/v1/oauth/device/access-token/"
    assert req.headers["content-type"] == "application/json"
    assert "x-authorization" not in req.headers
    assert req.json == {"refresh_token": REFRESH}

    assert stored(accli_login) == {
        "_default": {
            "1": {"token": "refresh-1", "server_url": server.url, "webcli_url": server.url, "project_slug": "demo"}
        }
    }
    assert oct(accli_login.stat().st_mode & 0o777) == "0o600"
    assert os.listdir(accli_login.parent) == ["data.json"]  # the temp file was renamed, not left behind


def test_accli_still_reads_the_rotated_login(server, accli_login):
    from tinydb import TinyDB

    Login().access_token()
    db = TinyDB(accli_login)
    assert [doc["token"] for doc in db] == ["refresh-1"]
    db.close()
    token = pytest.importorskip("accli.token")
    assert token.get_token() == "refresh-1"
    assert token.get_server_url() == server.url


def test_renewal_after_401_rotates_again_and_repeats_the_call(server, accli_login):
    server.route(
        "GET",
        "/api/v1/jobs/7/",
        handler=lambda req: (200, {"id": 7}) if req.headers["x-authorization"] == "access-2" else (401, {}),
    )
    login = Login()
    api = Api(login.server_url, token=login.access_token, renew=login.renew)
    assert api.get_json("/api/v1/jobs/7/") == {"id": 7}
    assert [r.headers["x-authorization"] for r in server.sent("GET")] == ["access-1", "access-2"]
    assert [r.json["refresh_token"] for r in server.sent("POST")] == [REFRESH, "refresh-1"]
    assert stored(accli_login)["_default"]["1"]["token"] == "refresh-2"


def test_missing_login_says_run_accli_login(home):
    with pytest.raises(NotLoggedIn, match="run `accli login` first"):
        Login()
    (home / ".accli").mkdir()
    (home / ".accli" / "data.json").write_text(json.dumps({"_default": {}}))
    with pytest.raises(NotLoggedIn, match="run `accli login` first"):
        Login()


@pytest.mark.parametrize("status", [400, 401, 403])
def test_refused_exchange_means_session_expired_and_keeps_the_file(server, accli_login, status):
    server.route("POST", "/api/v1/oauth/device/access-token/", status, {"detail": "invalid refresh token"})
    before = accli_login.read_bytes()
    with pytest.raises(SessionExpired, match=r"session expired, run `accli login`"):
        Login().access_token()
    assert accli_login.read_bytes() == before

from __future__ import annotations

import pytest
from acc_client import commands
from fakeserver import REFRESH, FakeServer


@pytest.fixture
def server():
    fake = FakeServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A HOME of its own, so no test reads or rotates a real login."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv("ACCLI_DEBUG", raising=False)
    return path


@pytest.fixture
def accli_login(home, server):
    """~/.accli/data.json written by TinyDB itself, as `accli login` leaves it."""
    from tinydb import TinyDB

    (home / ".accli").mkdir()
    db = TinyDB(home / ".accli" / "data.json")
    db.insert({"token": REFRESH, "server_url": server.url, "webcli_url": server.url, "project_slug": "demo"})
    db.close()
    state = {"n": 0}

    def exchange(req):
        state["n"] += 1
        return 200, {"access_token": f"access-{state['n']}", "refresh_token": f"refresh-{state['n']}"}

    server.route("POST", "/api/v1/oauth/device/access-token/", handler=exchange)
    return home / ".accli" / "data.json"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(commands, "sleep", lambda s: None)

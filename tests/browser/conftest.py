"""Browser tests: Chromium (Playwright) against the real ASGI app served by uvicorn.

pytest-django's `live_server` is a WSGI server without websockets, so the
pages are served by `manage.py serve_web` in a subprocess on a free port, on the test
database (like the Celery workers of tests/conftest.py). A missing Chromium
fails these tests: it is installed by scripts/services.sh.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.conftest import ROOT, _test_db_url

CHROMIUM = os.environ.get("ACC_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env() -> dict:
    env = dict(os.environ)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        DATABASE_URL=_test_db_url(),
        ACC_DATA_DIR=str(settings.DATA_DIR),
        ACC_JOBS_DIR=str(settings.ACC_JOBS_DIR),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(autouse=True)
def fresh_project_storage():
    """The servers use the real storage under ACC_DATA_DIR, where project ids of an earlier session come back."""
    root = Path(settings.MEDIA_ROOT)
    if root.resolve().is_relative_to(Path(settings.DATA_DIR).resolve()):
        shutil.rmtree(root / "projects", ignore_errors=True)


@pytest.fixture(scope="session")
def collected_static():
    """The web server serves static files through WhiteNoise from STATIC_ROOT, as in production."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=_server_env(),
        check=True,
        timeout=120,
    )


class WebServer:
    def __init__(self):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = settings.DATA_DIR / f"web-{os.getpid()}-{time.time_ns()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve_web", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env={"ACC_PUBLIC_URL": self.url, **_server_env()},  # sessions, unless a test says, under its /interactive/
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the web server exited early:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/accounts/login/", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the web server was not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def web_server(transactional_db, collected_static):
    server = WebServer()
    yield server
    server.stop()


@pytest.fixture
def browser(monkeypatch):
    """A headless Chromium. Missing Chromium is a failure, never a skip."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium is required for the browser tests and was not found at {CHROMIUM} (scripts/services.sh)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser, web_server):
    """A page in a fresh browser context that records the websocket frames it receives."""
    context = browser.new_context(
        base_url=web_server.url, timezone_id="Asia/Tokyo", locale="en-GB", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.ws_frames = []

    def on_socket(ws):
        ws.on("framereceived", lambda payload: page.ws_frames.append(payload))

    page.on("websocket", on_socket)
    watch_csp(page)
    yield page
    refused = list(page.csp_violations)
    context.close()
    assert not refused, f"the browser refused something under the Content-Security-Policy: {refused}"


# What Chromium writes to the console when the Content-Security-Policy blocks something.
CSP_CONSOLE_WORDS = ("Content Security Policy", "Content-Security-Policy", "Refused to")


def watch_csp(page):
    """Record in `page.csp_violations` every console message saying the CSP blocked a script, style, frame..."""
    page.csp_violations = []

    def on_console(message):
        if any(word in message.text for word in CSP_CONSOLE_WORDS):
            page.csp_violations.append(message.text)

    page.on("console", on_console)
    return page


def sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form button[type=submit]")
    page.wait_for_selector("details.usermenu")


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)

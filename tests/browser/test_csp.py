"""Pages under the Content-Security-Policy: the API docs render Swagger UI from our own files with no network,
the Django admin works, and the interactive-session proxy gives its own pages the policy but leaves a session's
server its own page (its inline script runs). The `tab` fixture fails on any CSP violation the browser reports.
The run form, the launch form, the job page's live log and the file explorer are covered by the other browser
tests, which run under the same policy and the same check."""

from __future__ import annotations

import datetime as dt
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import InteractiveSession, Job
from tests.browser.conftest import sign_in
from tests.web.conftest import make_routine

pytestmark = pytest.mark.browser


def only_local(page, base_url: str) -> list[str]:
    """Abort every request that leaves the test server, as if offline; return the addresses refused."""
    refused = []

    def route(r):
        if r.request.url.startswith(base_url):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.context.route("**/*", route)
    return refused


def test_the_api_docs_render_swagger_ui_offline(tab, web_server):
    refused = only_local(tab, web_server.url)
    tab.goto("/api/docs/")
    expect(tab.locator(".swagger-ui .info .title")).to_contain_text("Accelerator API")
    expect(tab.locator(".swagger-ui .opblock").first).to_be_visible()
    assert refused == []


def test_the_admin_works_under_the_policy(tab, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "root-pass-123")
    tab.goto("/admin/login/")
    tab.fill("#id_username", "root")
    tab.fill("#id_password", "root-pass-123")
    tab.click("input[type=submit]")
    expect(tab.locator("#site-name")).to_be_visible()
    tab.goto(f"/admin/auth/user/{admin.pk}/change/")
    expect(tab.locator("#user_form")).to_be_visible()
    tab.locator("#id_first_name").fill("Root")
    tab.locator("input[name=_continue]").click()
    expect(tab.locator(".messagelist")).to_contain_text("was changed successfully")
    tab.goto("/admin/auth/user/?q=root")
    expect(tab.locator("#result_list")).to_contain_text("root")


SESSION_PAGE = (
    b"<!doctype html><title>the session's own page</title><h1 id=served>served by the session</h1>"
    b"<script>document.body.dataset.inline = 'ran';</script>"
)


class SessionServer:
    """A stand-in for the server inside an interactive job: a page with an inline script and no CSP of its own."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(SESSION_PAGE)))
                self.end_headers()
                self.wfile.write(SESSION_PAGE)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"tcp://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def session_server():
    server = SessionServer()
    yield server
    server.stop()


def test_the_session_proxy_policy_covers_its_own_pages_not_the_sessions(tab, session_server, project, alice):
    routine = make_routine(project, alice, name="lab", schema=None)
    now = timezone.now()

    def session(token: str, **fields) -> InteractiveSession:
        job = Job.objects.create(
            project=project, routine_version=routine.latest_version, user=alice, name="lab", status="RUNNING"
        )
        return InteractiveSession.objects.create(
            job=job,
            token=token,
            socket="127.0.0.1:8787",
            ready_at=now,
            ends_at=now + dt.timedelta(minutes=30),
            **fields,
        )

    live = session("a" * 32, address=session_server.address)
    ended = session("c" * 32, address=session_server.address, ended_at=now)
    sign_in(tab, "alice", "alice-pass-123")

    served = tab.goto(f"/interactive/{live.token}/")
    expect(tab.locator("#served")).to_have_text("served by the session")
    expect(tab.locator("body[data-inline=ran]")).to_be_attached()  # the platform's policy did not reach it
    assert "content-security-policy" not in served.headers

    missing = tab.goto(f"/interactive/{'b' * 32}/")
    assert missing.status == 404
    assert "script-src 'self'" in missing.headers["content-security-policy"]
    assert missing.headers["x-content-type-options"] == "nosniff"
    expect(tab.locator("#session-state")).to_have_attribute("data-state", "missing")
    styled = "() => [...document.styleSheets].some(s => (s.href || '').endsWith('/css/app.css') && s.cssRules.length)"
    assert tab.evaluate(styled), "the platform's stylesheet did not load on the proxy's page"

    over = tab.goto(f"/interactive/{ended.token}/")
    assert over.status == 410
    assert "script-src 'self'" in over.headers["content-security-policy"]
    expect(tab.locator("#session-state")).to_have_attribute("data-state", "over")

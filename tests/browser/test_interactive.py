"""Browser test: an interactive session on Docker, opened from its job page, served inside Chromium
(a page and a WebSocket through the proxy), counted down, then stopped from the page."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, sign_in
from tests.conftest import wait_for_status
from tests.interactive.conftest import Platform, echo_routine
from workers import dispatch

pytestmark = [pytest.mark.browser, pytest.mark.docker]

ECHO_IN_THE_PAGE = """async () => {
  const ws = new WebSocket(location.href.replace(/^http/, "ws") + "ws");
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
  const answer = new Promise((ok) => { ws.onmessage = (e) => ok(e.data); });
  ws.send("hello from the browser");
  const text = await answer;
  ws.close();
  return text;
}"""


@pytest.fixture
def platform(transactional_db, collected_static):
    """The platform (serve_web) and the session proxy on ports of their own, as `make run` serves them."""
    served = Platform()
    yield served
    served.stop()


def test_open_the_session_from_the_job_page_and_stop_it(browser, platform, start_worker, project, alice, settings):
    settings.ACC_BACKEND = "docker"
    start_worker("docker", extra_env=platform.env)
    routine = echo_routine(project, alice, timeout=600)
    context = browser.new_context(base_url=platform.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, "alice", "alice-pass-123")
    job = dispatch.run_routine(routine=routine, user=alice)

    page.goto(f"/jobs/{job.pk}/")
    link = page.locator("#session-link")
    expect(link).to_be_visible(timeout=60_000)  # appears live when the worker logs the URL
    expect(page.locator("#log")).to_contain_text("Interactive session available at:")
    countdown = page.locator("#session-countdown")
    expect(countdown).to_contain_text("min")
    left = int(countdown.get_attribute("data-seconds-left"))
    assert 500 < left <= 600
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "interactive-job.png"))  # the top: the test's server script is long

    with page.expect_popup() as opened:
        link.click()
    session = opened.value
    expect(session.locator("#served")).to_have_text("served by the echo server")
    assert session.url.startswith(f"{platform.sessions}/interactive/"), "served by the session proxy"
    assert session.evaluate(ECHO_IN_THE_PAGE) == "hello from the browser"

    page.click("#session-stop")
    wait_for_status(job.pk, "SUCCEEDED", timeout=30)
    expect(page.locator("#session-over")).to_be_visible()
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED")
    session.reload()
    expect(session.locator("h1")).to_have_text("This interactive session is over")
    with session.expect_navigation():
        session.click("text=Open job")
    assert session.url == f"{platform.url}/jobs/{job.pk}/", "the page of the proxy links back to the platform"
    context.close()


@pytest.fixture
def own_hosts(monkeypatch, settings):
    """Sessions on hosts of their own; set before the page server and the worker start (they read the env)."""
    monkeypatch.setenv("ACC_INTERACTIVE_HOST", "{id}.sessions.localhost")
    settings.ACC_INTERACTIVE_HOST = "{id}.sessions.localhost"


def test_a_session_on_its_own_host_cannot_read_the_platforms_cookies(
    own_hosts, tab, web_server, start_worker, project, alice, settings
):
    settings.ACC_BACKEND = "docker"
    start_worker("docker", extra_env={"ACC_INTERACTIVE_BASE_URL": web_server.url})
    job = dispatch.run_routine(routine=echo_routine(project, alice, timeout=600), user=alice)
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto(f"/jobs/{job.pk}/")
    expect(page.locator("#session-link")).to_be_visible(timeout=60_000)
    assert "csrftoken" in page.evaluate("document.cookie"), "the platform's page holds its CSRF cookie"

    with page.expect_popup() as opened:
        page.click("#session-link")
    session = opened.value
    expect(session.locator("#served")).to_have_text("served by the echo server")
    token = job.interactive.token if hasattr(job, "interactive") else None
    assert session.url.startswith("http://") and ".sessions.localhost:" in session.url, session.url
    assert token is None or token in session.url
    assert session.evaluate(ECHO_IN_THE_PAGE.replace('+ "ws"', '+ "ws"')) == "hello from the browser"
    assert session.evaluate("document.cookie") == "", "neither the platform's cookies nor the HttpOnly one"
    stolen = session.evaluate(
        """async (api) => {
          try { const r = await fetch(api, { credentials: "include" }); return "read " + r.status; }
          catch (e) { return "blocked"; }
        }""",
        f"{web_server.url}/api/v1/projects/",
    )
    assert stolen == "blocked", "the platform's API answers no other origin"
    page.click("#session-stop")
    wait_for_status(job.pk, "SUCCEEDED", timeout=30)

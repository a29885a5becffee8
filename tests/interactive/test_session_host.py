"""Sessions on hosts of their own (ACC_INTERACTIVE_HOST="{id}.sessions.localhost"): the pages a session
serves run on another origin than the platform's, so they cannot act as the viewer on the platform.

The platform's URL signs the user in and hands them to the session's host with a one-minute ticket; the
host sets its own cookie (never sent to the platform, never forwarded to the server)."""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from jobs.models import InteractiveSession
from tests.conftest import Worker, wait_for_status
from tests.interactive.conftest import WebServer, cookies_for, echo_routine, run, session_url

pytestmark = pytest.mark.docker
HOSTS = "{id}.sessions.localhost"


@pytest.fixture(scope="module")
def host_web(django_db_setup, django_db_blocker):
    server = WebServer(ACC_INTERACTIVE_HOST=HOSTS)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def host_worker(django_db_setup, host_web):
    worker = Worker("docker", extra_env={"ACC_INTERACTIVE_BASE_URL": host_web.url, "ACC_INTERACTIVE_HOST": HOSTS})
    yield worker
    worker.stop()


@pytest.fixture
def session(host_web, host_worker, transactional_db, settings, api, project, alice):
    """A running echo session of alice's: (job id, platform URL, the session's own host)."""
    settings.ACC_BACKEND = "docker"
    settings.ACC_INTERACTIVE_HOST = HOSTS
    job_id = run(api, alice, echo_routine(project, alice, timeout=120))
    url = session_url(job_id)
    token = InteractiveSession.objects.get(job_id=job_id).token
    yield job_id, url, f"{token}.sessions.localhost:{host_web.port}"
    api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/")
    wait_for_status(job_id, {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"}, timeout=30)


def on_host(web, host: str, path: str, **kwargs) -> httpx.Response:
    """A request to the session's host, sent to serve_web on 127.0.0.1 (as *.localhost resolves in browsers)."""
    headers = {"Host": host, **kwargs.pop("headers", {})}
    return httpx.get(f"{web.url}{path}", headers=headers, timeout=10, **kwargs)


def enter(web, url: str, user) -> tuple[str, str]:
    """Follow the platform's URL into the session's host like a browser: (its cookie, where it leads)."""
    bounce = httpx.get(url, cookies=cookies_for(user), timeout=10)
    assert bounce.status_code == 302, bounce.text
    target = urlsplit(bounce.headers["location"])
    assert target.path == "/_acc/enter" and parse_qs(target.query)["next"] == ["/"]
    entered = on_host(web, target.netloc, f"{target.path}?{target.query}")
    assert entered.status_code == 302 and entered.headers["location"] == "/"
    set_cookie = entered.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    return set_cookie.split(";", 1)[0].split("=", 1)[1], target.netloc


def test_the_platform_url_leads_to_the_session_host_and_the_app_sees_no_credentials(host_web, session, alice, charlie):
    job_id, url, host = session
    cookie, netloc = enter(host_web, url, alice)
    assert netloc == host
    page = on_host(host_web, host, "/", cookies={"acc_interactive": cookie})
    assert page.status_code == 200 and "served by the echo server" in page.text
    seen = on_host(host_web, host, "/headers", cookies={"acc_interactive": cookie, "app": "1"}).text.lower()
    assert "path: /headers" in seen and "cookie: app=1" in seen and "acc_interactive" not in seen
    assert "x-forwarded-host: " + host in seen

    assert httpx.get(url, cookies=cookies_for(charlie), timeout=10).status_code == 404
    anonymous = on_host(host_web, host, "/lab?x=1")
    assert anonymous.status_code == 302
    assert anonymous.headers["location"] == f"{url.rstrip('/')}/lab?x=1", "back through the platform to sign in"
    forged = on_host(host_web, host, "/", cookies={"acc_interactive": cookie[:-2] + "xx"})
    assert forged.status_code == 302, "a cookie that is not ours is no cookie"
    other = InteractiveSession.objects.exclude(job_id=job_id).first()
    assert other is None or other.token not in host


def test_a_ticket_or_cookie_works_for_its_own_session_only(host_web, session, alice):
    _job_id, url, host = session
    cookie, _ = enter(host_web, url, alice)
    elsewhere = "f" * 40 + f".sessions.localhost:{host_web.port}"
    assert on_host(host_web, elsewhere, "/", cookies={"acc_interactive": cookie}).status_code == 302
    bounce = httpx.get(url, cookies=cookies_for(alice), timeout=10).headers["location"]
    query = urlsplit(bounce).query
    refused = on_host(host_web, elsewhere, f"/_acc/enter?{query}")
    assert refused.status_code == 403 and "This link has expired" in refused.text
    assert f'href="{host_web.url}/static/' in refused.text, "the page on the session's host is styled by the platform"


def test_websockets_on_the_session_host_check_cookie_and_origin(host_web, session, alice):
    _job_id, url, host = session
    cookie, _ = enter(host_web, url, alice)

    def ws(origin: str, with_cookie: bool = True):
        headers = {"Cookie": f"acc_interactive={cookie}"} if with_cookie else {}
        return connect(
            f"ws://{host}/ws",
            sock=socket.create_connection(("127.0.0.1", host_web.port)),
            origin=origin,
            additional_headers=headers,
            open_timeout=10,
            proxy=None,
        )

    with ws(f"http://{host}") as sock:
        sock.send("on its own host")
        assert sock.recv(timeout=10) == "on its own host"
    for origin, with_cookie in ((host_web.url, True), (f"http://{host}", False)):
        with pytest.raises(InvalidStatus):
            with ws(origin, with_cookie):
                pass

"""An interactive routine on the Docker (and Kubernetes) backend serving HTTP on 0.0.0.0:8787, via the proxy."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import docker
import httpx
import pytest
from django.conf import settings

from accounts.services import issue_token_pair
from jobs.models import InteractiveSession
from tests.conftest import wait_for_status
from tests.interactive.conftest import (
    BUSYBOX,
    cookies_for,
    echo_routine,
    end_now,
    interactive_routine,
    log_of,
    run,
    session_url,
)

pytestmark = pytest.mark.docker

HTTPD = "mkdir -p /www && echo '<h1>hello from httpd</h1>' > /www/index.html && exec httpd -f -p 8787 -h /www"


def get(url: str, user=None, **kwargs) -> httpx.Response:
    cookies = cookies_for(user) if user is not None else None
    return httpx.get(url, cookies=cookies, timeout=10, **kwargs)


def sign_in_and_follow(web, login_url: str, username: str, password: str) -> httpx.Response:
    """Sign in on the platform's login page as a browser does, then follow where it sends us."""
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        form = client.get(login_url)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        return client.post(
            login_url,
            data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
            headers={"referer": login_url},
        )


def test_busybox_httpd_is_served_to_its_owner_and_hidden_from_strangers(
    interactive_worker, web, api, project, alice, bob, charlie
):
    httpd_is_served_to_its_owner_and_hidden_from_strangers(
        "docker", interactive_worker, web, api, project, alice, bob, charlie
    )


def httpd_is_served_to_its_owner_and_hidden_from_strangers(
    backend, interactive_worker, web, api, project, alice, bob, charlie
):
    """Also on kubernetes (test_kube_http: a module of its own, so that no docker worker shares its queue)."""
    interactive_worker(backend)
    routine = interactive_routine(project, alice, socket_="0.0.0.0:8787", command=HTTPD, image=BUSYBOX, timeout=60)
    job_id = run(api, alice, routine)
    url = session_url(job_id)
    session = InteractiveSession.objects.get(job_id=job_id)
    assert url == f"{web.sessions}/interactive/{session.token}/", "on the session proxy's own port"
    assert len(session.token) >= 32 and session.address.startswith("tcp://")

    page = get(url, alice)
    assert page.status_code == 200 and "hello from httpd" in page.text
    assert get(url + "index.html", bob).status_code == 200, "bob is a member of the routine's project"
    stranger = get(url, charlie)
    assert stranger.status_code == 404 and "hello" not in stranger.text
    assert get(f"{web.sessions}/interactive/{'x' * 32}/", alice).status_code == 404, "unknown ids look the same"
    anonymous = get(url)
    assert anonymous.status_code == 302
    assert anonymous.headers["location"] == f"{web.url}/accounts/login/?next={quote(url, safe='')}"
    signed_in = sign_in_and_follow(web, anonymous.headers["location"], "alice", "alice-pass-123")
    assert signed_in.status_code == 200 and "hello from httpd" in signed_in.text, "back at the session after signing in"
    no_slash = get(url.rstrip("/"), alice)
    assert no_slash.status_code == 302 and no_slash.headers["location"] == f"/interactive/{session.token}/"
    token = issue_token_pair(user=alice)["access_token"]
    assert get(url, headers={"x-authorization": token}).status_code == 200, "accli's access token works too"
    mounted = get(f"{web.url}/interactive/{session.token}/", alice)
    assert mounted.status_code == 200 and "hello from httpd" in mounted.text, "the platform's own mount serves it too"
    assert get(f"{web.sessions}/api/v1/jobs/", alice).status_code == 404, "the proxy serves sessions only"

    api(alice).post(f"/api/v1/jobs/{job_id}/cancel/")
    wait_for_status(job_id, "CANCELLED", timeout=30)


def test_the_server_never_sees_platform_credentials(interactive_worker, web, api, project, alice):
    interactive_worker("docker")
    job_id = run(api, alice, echo_routine(project, alice, timeout=60))
    url = session_url(job_id)
    token = issue_token_pair(user=alice)["access_token"]
    cookies = {**cookies_for(alice), "csrftoken": "c" * 32, "app": "kept"}
    seen = httpx.get(
        url + "headers?x=1", cookies=cookies, headers={"authorization": f"Bearer {token}", "x-link-token": "t"}
    ).text.lower()
    assert "path: /headers?x=1" in seen, "the prefix is stripped by default"
    assert "cookie: app=kept" in seen
    for secret in ("sessionid", "csrftoken", token.lower(), "authorization", "x-link-token"):
        assert secret not in seen, f"{secret} reached the server"
    session_token = InteractiveSession.objects.get(job_id=job_id).token
    assert f"x-forwarded-prefix: /interactive/{session_token}".lower() in seen
    assert "host: 127.0.0.1:" in seen, "the server sees the host the browser used"

    redirect = httpx.get(url + "go-home", cookies=cookies_for(alice))
    assert redirect.status_code == 302 and redirect.headers["location"].endswith(f"{url[len(web.sessions) :]}home")
    posted = httpx.post(url + "echo", content=b"x" * 300_000, cookies=cookies_for(alice), timeout=10)
    assert posted.status_code == 200 and posted.content == b"x" * 300_000
    arrivals = []
    with httpx.stream("GET", url + "stream", cookies=cookies_for(alice), timeout=10) as streamed:
        started = time.monotonic()
        for chunk in streamed.iter_raw():
            arrivals.append((time.monotonic() - started, chunk))
    assert b"".join(c for _, c in arrivals) == b"part 0\npart 1\npart 2\n"
    assert arrivals[0][0] < 0.4 and arrivals[-1][0] > 0.9, f"passed on as the server sends it: {arrivals}"
    api(alice).post(f"/api/v1/jobs/{job_id}/cancel/")
    wait_for_status(job_id, "CANCELLED", timeout=30)


def test_session_ends_at_its_timeout_and_the_url_then_says_so(interactive_worker, web, api, project, alice, charlie):
    interactive_worker("docker")
    # a long timeout whose deadline is then moved to now: a short one would race the server's start under load
    routine = interactive_routine(project, alice, socket_="0.0.0.0:8787", command=HTTPD, image=BUSYBOX, timeout=120)
    job_id = run(api, alice, routine)
    url = session_url(job_id)
    assert get(url, alice).status_code == 200
    end_now(job_id)
    job = wait_for_status(job_id, {"TIMED_OUT", "SUCCEEDED"}, timeout=30)
    assert job.status == "TIMED_OUT", "httpd dies of the TERM: not a clean exit"
    assert "reached its end time" in log_of(job_id)
    deadline = time.monotonic() + 5
    while (over := get(url, alice)).status_code != 410 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert over.status_code == 410 and "session is over" in over.text
    assert get(url, charlie).status_code == 404, "strangers learn nothing, even after the end"
    network = f"acc-int-{settings.ACC_INSTANCE}-{job_id}"
    deadline = time.monotonic() + 5
    while docker.from_env().networks.list(names=[network]):
        assert time.monotonic() < deadline, "the job's network is removed with its container"
        time.sleep(0.2)


def test_a_server_that_shuts_down_cleanly_at_the_timeout_succeeds(interactive_worker, web, api, project, alice):
    interactive_worker("docker")
    job_id = run(api, alice, echo_routine(project, alice, timeout=120))
    session_url(job_id)
    end_now(job_id)
    job = wait_for_status(job_id, {"TIMED_OUT", "SUCCEEDED"}, timeout=30)
    assert job.status == "SUCCEEDED" and "time limit of 120 s" in job.message
    assert "echo server stopped" in log_of(job_id)


def test_every_proxy_hears_at_once_that_a_session_ended(interactive_worker, web, api, project, alice):
    from jobs import sessions

    interactive_worker("docker")
    job_id = run(api, alice, echo_routine(project, alice, timeout=60))
    url = session_url(job_id)
    assert get(url, alice).status_code == 200  # the proxy starts listening for ends
    time.sleep(1.2)  # past the second it holds a ready session without asking the database again
    assert get(url, alice).status_code == 200  # asked again: "ready" is held for the next second
    sessions.mark_ended(InteractiveSession.objects.get(job_id=job_id))  # the server itself still runs
    time.sleep(0.2)
    assert get(url, alice).status_code == 410, "told on the channel layer, not a second later from the database"

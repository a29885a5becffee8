"""A session's life on the Docker backend: stopped early from the page or the API, extended by its owner
within the operator's limit; afterwards its URL says it is over."""

from __future__ import annotations

import time

import httpx
import pytest
from django.test import Client

from jobs.models import InteractiveSession, Job
from tests.conftest import wait_for_status
from tests.interactive.conftest import cookies_for, echo_routine, log_of, run, session_url

pytestmark = pytest.mark.docker


def wait_over(url: str, user, timeout: float = 5) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url, cookies=cookies_for(user), timeout=10)
        if response.status_code != 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_the_owner_stops_the_session_from_the_job_page(interactive_worker, web, api, project, alice, bob):
    interactive_worker("docker")
    job_id = run(api, alice, echo_routine(project, alice, timeout=120))
    url = session_url(job_id)
    outsider = Client()
    outsider.force_login(bob)  # a member may use the session, but only its owner and maintainers stop it
    assert outsider.post(f"/jobs/{job_id}/session/stop/").status_code == 403
    page = Client()
    page.force_login(alice)
    started = time.monotonic()
    assert page.post(f"/jobs/{job_id}/session/stop/").status_code == 302
    job = wait_for_status(job_id, {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"}, timeout=20)
    assert time.monotonic() - started < 10
    assert job.status == "SUCCEEDED" and job.message == "The session was stopped by alice."
    assert "echo server stopped" in log_of(job_id), "the server was asked to shut down (TERM), not killed"
    over = wait_over(url, alice)
    assert over.status_code == 410 and "session is over" in over.text
    assert InteractiveSession.objects.get(job_id=job_id).ended_at is not None


def test_the_owner_extends_within_the_limit(interactive_worker, web, api, project, alice, bob, settings):
    settings.ACC_INTERACTIVE_MAX_EXTEND = 5
    interactive_worker("docker")
    # 20 s: the extensions below must reach a session that is up, and a loaded machine is slow to start one
    job_id = run(api, alice, echo_routine(project, alice, timeout=20))
    session_url(job_id)
    before = InteractiveSession.objects.get(job_id=job_id).ends_at

    assert api(bob).post(f"/api/v1/jobs/{job_id}/session/extend/", {"seconds": 3}, format="json").status_code == 403
    extended = api(alice).post(f"/api/v1/jobs/{job_id}/session/extend/", {"seconds": 3}, format="json")
    assert extended.status_code == 200, extended.content
    assert extended.json()["extended_seconds"] == 3 and extended.json()["extension_left"] == 2
    too_much = api(alice).post(f"/api/v1/jobs/{job_id}/session/extend/", {"seconds": 3}, format="json")
    assert too_much.status_code == 400 and "2 s is left" in too_much.json()["detail"]
    session = InteractiveSession.objects.get(job_id=job_id)
    assert (session.ends_at - before).total_seconds() == 3

    job = wait_for_status(job_id, {"SUCCEEDED", "TIMED_OUT"}, timeout=30)
    ran = (job.mapping_outputs_at - job.running_at).total_seconds()
    assert 22.5 <= ran < 40, f"20 s + 3 s of extension, ran {ran:.1f} s"
    assert job.status == "SUCCEEDED" and "time limit of 23 s" in job.message
    assert "The session was extended" in log_of(job_id)
    late = api(alice).post(f"/api/v1/jobs/{job_id}/session/extend/", {"seconds": 1}, format="json")
    assert late.status_code == 409


def test_the_session_api_says_where_and_until_when(interactive_worker, web, api, project, alice):
    interactive_worker("docker")
    job_id = run(api, alice, echo_routine(project, alice, timeout=120))
    url = session_url(job_id)
    body = api(alice).get(f"/api/v1/jobs/{job_id}/session/").json()
    assert body["state"] == "ready" and body["url"] == url and body["socket"] == "0.0.0.0:8787"
    assert "address" not in body, "where the container lives is for operators only"
    stopped = api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/")
    assert stopped.status_code == 202
    wait_for_status(job_id, "SUCCEEDED", timeout=20)
    assert api(alice).get(f"/api/v1/jobs/{job_id}/session/").json()["state"] == "over"
    assert Job.objects.get(pk=job_id).status == "SUCCEEDED"

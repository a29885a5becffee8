"""The session card of the job page (server-rendered; the browser test clicks through it for real)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import InteractiveSession, Job
from routines import services
from workers import dispatch

pytestmark = pytest.mark.django_db

TASK = {
    "name": "lab",
    "job_kwargs": {
        "docker_image": "acc-test/python:latest",
        "command": "python3 -m http.server 8787",
        "conf": {"interactive_socket": "0.0.0.0:8787"},
    },
}


def page_of(user, job) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/jobs/{job.pk}/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def job(project, alice):
    routine = services.save_routine(project=project, user=alice, task=TASK)
    return dispatch.run_routine(routine=routine, user=alice)


def open_session(job, **fields) -> InteractiveSession:
    Job.objects.filter(pk=job.pk).update(status="RUNNING")
    now = timezone.now()
    defaults = {"ready_at": now, "ends_at": now + dt.timedelta(minutes=30), "address": "tcp://10.0.0.2:8787"}
    return InteractiveSession.objects.create(job=job, token="t" * 32, socket="0.0.0.0:8787", **{**defaults, **fields})


def test_a_queued_session_says_it_waits_for_the_server(job, alice):
    text = page_of(alice, job)
    assert 'id="interactive" data-state="queued"' in text and "Waiting for the server" in text
    assert 'id="session-stop"' in text and 'id="session-link"' not in text


def test_a_ready_session_links_counts_down_and_offers_stop_and_extend_to_its_owner(job, alice, bob, settings):
    settings.ACC_INTERACTIVE_BASE_URL = "https://sessions.example.org:8443"
    session = open_session(job)
    text = page_of(alice, job)
    url = f"https://sessions.example.org:8443/interactive/{session.token}/"
    assert f'href="{url}"' in text and 'target="_blank"' in text, "the session proxy's address, as in the log"
    assert f'<code class="muted" id="session-url">{url}</code>' in text
    assert f'data-ends-at="{session.ends_at.isoformat()}"' in text
    assert 'id="session-stop"' in text and "Extend by 30 min" in text and "up to 4 h more" in text
    seen_by_bob = page_of(bob, job)
    assert 'id="session-link"' in seen_by_bob
    assert 'id="session-stop"' not in seen_by_bob and 'id="session-extend"' not in seen_by_bob
    settings.ACC_INTERACTIVE_MAX_EXTEND = 0
    assert 'id="session-extend"' not in page_of(alice, job), "no extensions allowed: no button"


def test_the_page_buttons_stop_and_extend(job, alice):
    session = open_session(job)
    client = Client()
    client.force_login(alice)
    assert client.post(f"/jobs/{job.pk}/session/extend/").status_code == 302
    session.refresh_from_db()
    assert session.extended_seconds == 1800
    assert client.post(f"/jobs/{job.pk}/session/stop/").status_code == 302
    session.refresh_from_db()
    assert session.stop_requested_at is not None and session.stopped_by == alice


def test_an_ended_session_says_it_is_over(job, alice):
    open_session(job, ended_at=timezone.now())
    text = page_of(alice, job)
    assert 'data-state="over"' in text and "The session is over" in text
    assert 'id="session-link"' not in text and 'id="session-stop"' not in text


def test_an_ordinary_job_has_no_session_card(project, alice):
    task = {**TASK, "name": "batch", "job_kwargs": {**TASK["job_kwargs"], "conf": {}}}
    routine = services.save_routine(project=project, user=alice, task=task)
    job = dispatch.run_routine(routine=routine, user=alice)
    assert 'id="interactive"' not in page_of(alice, job)
    assert Client().post(f"/jobs/{job.pk}/session/stop/").status_code == 302, "signed-out: to the login page"


def test_operators_list_sessions_and_stop_them_in_the_admin(job, django_user_model):
    session = open_session(job)
    operator = django_user_model.objects.create_superuser("ops", "ops@example.org", "ops-pass-123")
    client = Client()
    client.force_login(operator)
    listing = client.get("/admin/workers/interactivesession/").content.decode()
    assert "tcp://10.0.0.2:8787" in listing and session.token not in listing
    response = client.post(
        "/admin/workers/interactivesession/", {"action": "stop_sessions", "_selected_action": [session.pk]}, follow=True
    )
    assert "Asked 1 session(s) to stop." in response.content.decode()
    session.refresh_from_db()
    assert session.stop_requested_at is not None and session.stopped_by == operator


def test_a_viewer_of_the_project_is_told_the_session_runs_but_gets_no_link(job, project, django_user_model):
    from routines.models import Membership, Role

    viewer = django_user_model.objects.create_user("vera", "vera@example.org", "vera-pass-123")
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)
    session = open_session(job)
    text = page_of(viewer, job)
    assert 'id="session-not-yours"' in text and "Only people who may run this routine" in text
    assert (
        'id="session-link"' not in text
        and session.token not in text.split('id="interactive"')[1].split("</section>")[0]
    )

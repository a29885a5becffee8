"""A hosted run's job page links the hosted model for its launcher, and the author's routine only for its readers."""

import json

import pytest
from django.test import Client

from hosting import services as hosting
from hosting.models import HostedRun
from hosting.pages import job_origin
from tests.hosting.conftest import publish, square_routine
from web.launchers import Origin
from workers import dispatch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):
    root = tmp_path / "storage"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}},
    }
    return root


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def launched_by(user, slug="square") -> HostedRun:
    response = client_of(user).post(f"/hosted/{slug}/", {"conf_json": json.dumps({"n": 3})})
    assert response.status_code == 302, response.content.decode()[:2000]
    return HostedRun.objects.filter(user=user).latest("pk")


def crumbs(text: str) -> str:
    return text.split('class="crumbs"')[1].split("</div>")[0]


def test_the_launcher_gets_a_link_to_the_model_and_none_to_the_authors_routine(project, alice, carol):
    routine = square_routine(project, alice)
    publish(alice, routine)
    run = launched_by(carol)

    page = client_of(carol).get(f"/jobs/{run.job_id}/")
    assert page.status_code == 200
    text = crumbs(page.content.decode())
    assert 'href="/hosted/square/"' in text and "Square a number" in text
    assert f"/routines/{routine.pk}/" not in page.content.decode(), "no link that answers 404"
    assert client_of(carol).get(f"/routines/{routine.pk}/").status_code == 404, "the routine is not hers to read"
    assert client_of(carol).get("/hosted/square/").status_code == 200, "the model link opens"


def test_the_author_sees_both_links(project, alice):
    routine = square_routine(project, alice)
    publish(alice, routine)
    run = launched_by(alice)
    text = crumbs(client_of(alice).get(f"/jobs/{run.job_id}/").content.decode())
    assert f'href="/routines/{routine.pk}/"' in text and 'href="/hosted/square/"' in text


def test_a_model_made_private_keeps_its_launchers_way_back_and_others_get_only_its_name(project, alice, carol, dave):
    routine = square_routine(project, alice)
    model = publish(alice, routine)
    run = launched_by(carol)
    hosting.update_model(model=model, user=alice, data={"policy": "private"})
    text = crumbs(client_of(carol).get(f"/jobs/{run.job_id}/").content.decode())
    assert "Square a number" in text and 'href="/hosted/square/"' in text
    # someone else who could read the job but not see the model: its name, no link that would answer 404
    assert job_origin(dave, run.job) == Origin(kind="hosted model", title="Square a number", url="")


def test_an_ordinary_job_names_no_origin(project, alice):
    routine = square_routine(project, alice, name="plain")
    job = dispatch.run_routine(routine=routine, user=alice, conf={"n": "2"})
    text = client_of(alice).get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="job-origin"' not in text and f'href="/routines/{routine.pk}/"' in text

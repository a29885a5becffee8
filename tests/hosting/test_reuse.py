"""The build-system cache answers a hosted launch identical to an earlier run, but only for someone who may
read that earlier run: another member of a shared project, not a stranger launching in their own area."""

import pytest

from hosting import services as hosting
from jobs.models import Job
from tests.conftest import wait_for_status
from tests.hosting.conftest import publish, square_routine, write

pytestmark = pytest.mark.django_db(transaction=True)


def launch(api, user, slug, body):
    response = api(user).post(f"/api/v1/hosted/{slug}/runs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_an_identical_launch_reuses_only_a_run_the_launcher_may_read(api, start_worker, project, alice, bob, carol):
    start_worker("local")
    routine = square_routine(project, alice)
    # without inputs or outputs nothing in the job names its project: bob's and carol's launches are identical
    publish(alice, routine, slug="plain", inputs_schema=[], outputs=[])
    bobs = wait_for_status(launch(api, bob, "plain", {"conf": {"n": 5}})["job"], "SUCCEEDED")
    assert bobs.project == hosting.home_project(bob)

    carols = launch(api, carol, "plain", {"conf": {"n": 5}})
    carols_job = Job.objects.get(pk=carols["job"])
    assert carols_job.cache_key == bobs.cache_key, "the same identity"
    assert carols["reused_from"] is None and carols["status"] != "SUCCEEDED"
    assert "No earlier successful job with this identity that you may read" in carols_job.cache_note
    assert wait_for_status(carols_job.pk, "SUCCEEDED").reused_from is None, "it ran itself"

    publish(alice, routine, slug="square")
    write(project, "shared/data.txt", b"a shared line\n")
    body = {"conf": {"n": 4}, "inputs": {"data": "shared/data.txt"}, "project": "demo"}
    first = launch(api, bob, "square", body)
    wait_for_status(first["job"], "SUCCEEDED")

    again = launch(api, alice, "square", body)
    assert again["status"] == "SUCCEEDED" and again["reused_from"] == first["job"], "answered at once"
    [out] = api(alice).get(again["status_url"]).json()["detail"]["outputs"]
    assert b"".join(api(alice).get(out["url"]).streaming_content) == b"square=16\na shared line\n"

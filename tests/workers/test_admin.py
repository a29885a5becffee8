"""Operators watch and cancel jobs in the Django admin."""

import pytest

from jobs.models import Job
from routines import services
from workers import dispatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("ops", "ops@example.org", "ops-pass-123")


def test_operator_filters_jobs_and_cancels_them_with_the_action(client, operator, project, alice):
    task = {"name": "sleeper", "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": "sleep 100"}}
    routine = services.save_routine(project=project, user=alice, task=task)
    job = dispatch.run_routine(routine=routine, user=alice)
    client.force_login(operator)
    listing = client.get("/admin/workers/job/?status__exact=QUEUED")
    assert listing.status_code == 200 and f">{job.pk}<" in listing.content.decode()
    response = client.post("/admin/workers/job/", {"action": "cancel_jobs", "_selected_action": [job.pk]}, follow=True)
    assert response.status_code == 200 and "Asked 1 job(s) to cancel." in response.content.decode()
    assert Job.objects.get(pk=job.pk).status == "CANCELLED"
    detail = client.get(f"/admin/workers/job/{job.pk}/change/")
    assert detail.status_code == 200 and "secrets_encrypted" not in detail.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/routines/project/",
        "/admin/routines/routine/",
        "/admin/routines/routineversion/",
        "/admin/routines/basestack/",
        "/admin/routines/membership/",
        "/admin/workers/jobevent/",
        "/admin/workers/logchunk/",
        "/admin/workers/joboutput/",
        "/admin/accounts/refreshtoken/",
        "/admin/jobflows/jobflowrun/",
    ],
)
def test_every_admin_list_opens(client, operator, project, url):
    client.force_login(operator)
    assert client.get(url).status_code == 200


def test_operator_sees_which_jobs_came_from_the_cache(client, operator, project, alice):
    task = {"name": "cached", "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": "echo same"}}
    routine = services.save_routine(project=project, user=alice, task=task)
    original = dispatch.run_routine(routine=routine, user=alice)
    # stand-in for a worker having run it: the dispatch already recorded the identity
    Job.objects.filter(pk=original.pk).update(status="SUCCEEDED")
    reused = dispatch.run_routine(routine=routine, user=alice)
    assert reused.status == "SUCCEEDED" and reused.reused_from_id == original.pk
    client.force_login(operator)
    listing = client.get("/admin/workers/job/?from_cache=yes").content.decode()
    assert f"/admin/workers/job/{reused.pk}/change/" in listing
    assert f"/admin/workers/job/{original.pk}/change/" not in listing, "a job that ran is not listed as reused"
    assert f'field-reused_from_id">{original.pk}<' in listing
    detail = client.get(f"/admin/workers/job/{reused.pk}/change/").content.decode()
    assert reused.cache_key in detail and "Reused job #" in detail

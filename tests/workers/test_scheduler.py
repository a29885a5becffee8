"""The fair queue and project quotas (jobs.scheduler, jobs.quotas): who starts next, who waits and why."""

import re
import threading
import time

import pytest

from jobs import scheduler
from jobs.models import Job, Quota
from jobs.states import Status, transition
from routines import services
from routines.models import Membership, Project, Role
from tests.conftest import wait_for_status
from workers import dispatch
from workers.ending import job_ended

pytestmark = pytest.mark.django_db(transaction=True)  # dispatch queues jobs once its transaction commits


def routine_in(project, user, *, name="t", command="true", **resources):
    task = {
        "name": name,
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": command},
        **resources,
    }
    return services.save_routine(project=project, user=user, task=task)


def launch(routine, user, n: int = 1, **resources) -> list[int]:
    """Dispatch `n` distinct jobs (the conf differs, so the build cache joins none of them)."""
    return [
        dispatch.run_routine(
            routine=routine, user=user, conf={"i": f"{time.time_ns()}-{i}"}, resources=resources or None
        ).pk
        for i in range(n)
    ]


def admitted(ids=None) -> list[int]:
    rows = Job.objects.filter(status=Status.QUEUED, admitted_at__isnull=False, routine_version__isnull=False)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return list(rows.order_by("pk").values_list("pk", flat=True))


def claim(job_id: int) -> None:
    """What a worker does when it picks a job up: the job leaves the window; the runner then asks for a pass."""
    assert transition(job_id, Status.MAPPING_INPUTS, reason="picked up by a worker")
    scheduler.admit()


def finish(job_id: int) -> None:
    job = Job.objects.get(pk=job_id)
    if job.status == Status.QUEUED:
        transition(job_id, Status.MAPPING_INPUTS)
    transition(job_id, Status.RUNNING)
    transition(job_id, Status.MAPPING_OUTPUTS)
    assert transition(job_id, Status.SUCCEEDED, reason="done")
    job_ended(job_id, None)


def in_use(project) -> int:
    rows = Job.objects.filter(project=project, routine_version__isnull=False)
    return (
        rows.filter(status__in=["BUILDING", "MAPPING_INPUTS", "RUNNING", "MAPPING_OUTPUTS"]).count()
        + rows.filter(status=Status.QUEUED, admitted_at__isnull=False).count()
    )


@pytest.fixture
def climate(alice, bob):
    p = Project.objects.create(slug="climate", name="Climate")
    Membership.objects.create(project=p, user=alice, role=Role.OWNER)
    Membership.objects.create(project=p, user=bob, role=Role.MEMBER)
    return p


def test_one_project_with_many_queued_jobs_does_not_starve_another(settings, project, climate, alice):
    settings.ACC_START_WINDOW = 8
    flood = launch(routine_in(project, alice), alice, 30)
    assert len(admitted(flood)) == 8, "the window holds 8 started jobs; the rest wait in our queue"
    waiting = Job.objects.get(pk=flood[-1])
    assert waiting.admitted_at is None and waiting.wait_reason == scheduler.WINDOW_REASON

    (single,) = launch(routine_in(climate, alice), alice)
    assert Job.objects.get(pk=single).admitted_at is None  # the window is still full
    claim(flood[0])  # a worker takes one: a slot is free
    assert single in admitted(), "the project with nothing in use goes before the one with 8"
    assert Job.objects.get(pk=single).wait_reason == ""
    claim(single)
    assert admitted() == flood[1:9], "then the flood goes on, oldest first"


def test_a_job_alone_in_the_queue_is_admitted_at_once_until_the_window_or_a_quota_says_wait(
    settings, project, climate, alice
):
    settings.ACC_START_WINDOW = 2
    routine = routine_in(project, alice)
    first, second = launch(routine, alice, 2)
    assert admitted() == [first, second]  # each was alone in the queue, and the window had room
    (third,) = launch(routine, alice)
    assert Job.objects.get(pk=third).wait_reason == scheduler.WINDOW_REASON  # the window is full
    claim(first)
    assert admitted() == [second, third]

    settings.ACC_START_WINDOW = 8
    Quota.objects.create(project=climate, max_running_jobs=1)
    (runs,) = launch(routine_in(climate, alice), alice)
    (held,) = launch(Job.objects.get(pk=runs).routine_version.routine, alice)  # alone, the window has room
    assert runs in admitted() and held not in admitted()
    assert "quota" in Job.objects.get(pk=held).wait_reason


def test_users_of_a_project_take_turns(settings, project, alice, bob):
    settings.ACC_START_WINDOW = 2
    routine = routine_in(project, alice)
    alices = launch(routine, alice, 10)
    (bobs,) = launch(routine, bob)
    assert admitted() == alices[:2]
    claim(alices[0])
    assert admitted() == sorted([alices[1], bobs]), "bob's one job goes before alice's third"
    claim(alices[1])
    assert admitted() == sorted([bobs, alices[2]])


def test_a_higher_priority_goes_first(settings, project, climate, alice):
    settings.ACC_START_WINDOW = 1
    routine = routine_in(project, alice)
    first, second, third = launch(routine, alice, 3)
    (other,) = launch(routine_in(climate, alice), alice)
    Job.objects.filter(pk=third).update(priority=5)  # an operator's choice in the admin
    claim(first)
    assert admitted() == [third], "priority beats both age and the project's turn"
    claim(third)
    assert admitted() == [other], "then, within priority 0, the project with nothing in use"
    claim(other)
    assert admitted() == [second]


def test_a_quota_of_four_cores_holds_ten_jobs_to_four_at_once(settings, api, client, project, alice):
    settings.ACC_START_WINDOW = 20
    Quota.objects.create(project=project, max_cores=4)
    ids = launch(routine_in(project, alice), alice, 10, required_cores=1)
    assert len(admitted(ids)) == 4 and in_use(project) == 4
    reason = "waiting for quota: project demo uses 4 of 4 cores"
    body = api(alice).get(f"/api/v1/jobs/{ids[-1]}/").json()
    assert body["status"] == "QUEUED" and body["wait_reason"] == reason
    listed = {j["id"]: j for j in api(alice).get("/api/v1/jobs/", {"project": "demo"}).json()["results"]}
    assert {listed[i]["wait_reason"] for i in ids[4:]} == {reason}
    assert {listed[i]["wait_reason"] for i in ids[:4]} == {""}
    client.force_login(alice)
    page = client.get(f"/jobs/{ids[-1]}/").content.decode()
    assert f"Not started yet: {reason}." in page

    done = []
    while len(done) < len(ids):
        running = admitted(ids)
        assert running, "a job must have been admitted while others wait"
        claim(running[0])  # a worker picks it up: it still counts against the quota
        assert in_use(project) <= 4
        finish(running[0])  # it ends: the next one is admitted at once
        done.append(running[0])
        assert in_use(project) <= 4
    assert sorted(done) == ids, "every job started, oldest first"
    assert not Job.objects.filter(pk__in=ids).exclude(status=Status.SUCCEEDED).exists()


def test_the_reason_names_running_jobs_and_ram_limits(settings, api, project, climate, alice):
    settings.ACC_START_WINDOW = 20
    Quota.objects.create(project=project, max_running_jobs=2)
    Quota.objects.create(project=climate, max_ram=4 * 1024**3)
    ids = launch(routine_in(project, alice), alice, 3)
    assert Job.objects.get(pk=ids[2]).wait_reason == "waiting for quota: project demo runs 2 of 2 jobs"
    big = launch(routine_in(climate, alice), alice, 3, required_ram=int(1.75 * 1024**3))
    assert len(admitted(big)) == 2
    body = api(alice).get(f"/api/v1/jobs/{big[2]}/").json()
    assert body["wait_reason"] == "waiting for quota: project climate uses 3.5 of 4 GiB RAM"


def test_the_default_quota_applies_to_projects_without_their_own(settings, project, climate, alice):
    settings.ACC_START_WINDOW = 20
    Quota.objects.create(project=None, max_running_jobs=1)
    Quota.objects.create(project=climate, max_running_jobs=3)
    assert len(admitted(launch(routine_in(project, alice), alice, 3))) == 1
    assert len(admitted(launch(routine_in(climate, alice), alice, 5))) == 3


def test_a_job_that_can_never_fit_is_refused_at_dispatch(api, project, alice):
    Quota.objects.create(project=project, max_cores=4, max_ram=2 * 1024**3)
    client = api(alice)
    body = {
        "name": "big",
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": "true"},
        "required_cores": 8,
    }
    response = client.post("/api/v1/aterm-cli/demo/jobs/dispatch/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json() == {
        "detail": "This job asks for 8 cores but project demo may use at most 4 at once (4 over its quota). "
        "Ask an operator to raise the quota or ask for fewer cores.",
        "code": "over_quota",
    }
    routine = routine_in(project, alice, name="fat", required_ram=3 * 1024**3)  # saving it is fine, running not
    response = client.post(f"/api/v1/routines/{routine.pk}/run/", {}, format="json")
    assert response.status_code == 400, response.content
    assert (
        "3 GiB of RAM but project demo may use at most 2 GiB at once (1 GiB over its quota)"
        in (response.json()["detail"])
    )
    flow = {
        "is_holder_job": True,
        "name": "flow",
        "job_kwargs": {},
        "children": [
            {"name": "ok", "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": "true"}},
            {**body, "name": "too-big"},
        ],
    }
    response = client.post("/api/v1/aterm-cli/demo/jobs/dispatch/", flow, format="json")
    assert response.status_code == 400 and "asks for 8 cores" in response.json()["detail"]
    assert not Job.objects.filter(project=project).exists(), "nothing of a refused dispatch is kept"

    Quota.objects.filter(project=project).update(max_cores=None, max_ram=None, max_running_jobs=0)
    response = client.post("/api/v1/aterm-cli/demo/jobs/dispatch/", {**body, "required_cores": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Project demo may run no jobs: its quota allows 0 at once.")


def test_a_jobflow_child_kept_by_its_worker_respects_the_quota(settings, project, alice):
    """advance_flow(keep_one=True) hands a ready child to the worker only if the quota has room."""
    from jobflows import services as flow_services

    settings.ACC_START_WINDOW = 20
    Quota.objects.create(project=project, max_running_jobs=1)
    step = {"job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": "true"}, "required_cores": 1}
    tree = {**step, "is_holder_job": False, "name": "parent", "children": [{**step, "name": "child"}]}
    root = flow_services.dispatch_flow(project=project, user=alice, body=tree)
    run = root.flow
    nodes = {job.name: job for job in Job.objects.filter(flow_run=run)}
    parent, child = nodes["parent"], nodes["child"]
    assert admitted() == [parent.pk]
    blocker = launch(routine_in(project, alice), alice)[0]  # waits: the quota allows 1 job
    claim(parent.pk)
    transition(parent.pk, Status.RUNNING)
    transition(parent.pk, Status.MAPPING_OUTPUTS)
    transition(parent.pk, Status.SUCCEEDED)
    ready = job_ended(parent.pk, run.pk, keep_one=True)
    assert ready == child.pk, "the quota has room again: the worker goes straight on with the child"
    assert Job.objects.get(pk=child.pk).admitted_at is not None
    assert Job.objects.get(pk=blocker).wait_reason == "waiting for quota: project demo runs 1 of 1 jobs"


def test_concurrent_passes_never_admit_beyond_the_quota(settings, project, alice):
    settings.ACC_START_WINDOW = 50
    Quota.objects.create(project=project, max_running_jobs=3)
    routine = routine_in(project, alice)
    ids = launch(routine, alice, 12)
    for job_id in admitted(ids):
        finish(job_id)
    # many passes at once, from threads (each with its own connection), as workers and requests would
    errors = []

    def pass_():
        try:
            scheduler.admit()
        except Exception as exc:  # pragma: no cover - shown below
            errors.append(exc)
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=pass_) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert in_use(project) == 3


def test_a_retry_waits_for_its_backoff_in_the_queue(settings, project, alice):
    settings.ACC_START_WINDOW = 20
    routine = routine_in(project, alice)
    (job_id,) = launch(routine, alice)
    job = Job.objects.get(pk=job_id)
    from jobs.services import next_attempt

    finish(job_id)
    retry = next_attempt(job, status=Status.QUEUED, reason="retry", delay=30)
    assert scheduler.admit() == 0
    retry.refresh_from_db()
    assert retry.admitted_at is None and retry.wait_reason.startswith("waiting for its retry backoff, until ")
    Job.objects.filter(pk=retry.pk).update(start_after=retry.start_after.replace(year=2000))
    assert scheduler.admit() == 1


def test_operators_set_quotas_and_priorities_in_the_admin(client, django_user_model, project, alice):
    operator = django_user_model.objects.create_superuser("ops", "ops@example.org", "ops-pass-123")
    client.force_login(operator)
    page = client.get("/admin/workers/quota/add/")
    assert page.status_code == 200 and "512 MiB" in page.content.decode()
    response = client.post(
        "/admin/workers/quota/add/",
        {"project": project.pk, "max_running_jobs": "4", "max_cores": "8", "max_ram": "16 GiB"},
        follow=True,
    )
    assert response.status_code == 200, response.content
    quota = Quota.objects.get(project=project)
    assert (quota.max_running_jobs, quota.max_cores, quota.max_ram) == (4, 8.0, 16 * 1024**3)
    listing = client.get("/admin/workers/quota/").content.decode()
    assert "quota of demo" in listing and "16 GiB" in listing
    edit = client.get(f"/admin/workers/quota/{quota.pk}/change/").content.decode()
    assert 'value="16 GiB"' in edit

    assert client.post("/admin/workers/quota/add/", {"max_cores": "100"}).status_code == 302  # the default
    again = client.post("/admin/workers/quota/add/", {"max_cores": "50"})
    assert again.status_code == 200 and "already a default quota" in again.content.decode()
    bad = client.post("/admin/workers/quota/add/", {"project": "", "max_ram": "lots"})
    assert "Write a size such as 512 MiB" in bad.content.decode()

    (job_id,) = launch(routine_in(project, alice), alice)
    change = client.get(f"/admin/workers/job/{job_id}/change/")
    assert change.status_code == 200 and 'name="priority"' in change.content.decode()
    form = {
        name: value
        for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', change.content.decode())
    }
    saved = client.post(f"/admin/workers/job/{job_id}/change/", {**form, "priority": "7"})
    assert saved.status_code == 302, saved.content.decode()[-3000:]
    assert Job.objects.get(pk=job_id).priority == 7


def test_quota_limits_running_jobs_with_a_real_worker(settings, start_worker, api, project, alice):
    """End to end on `local`: 8 one-core jobs under a 2-core quota never run more than 2 at once."""
    Quota.objects.create(project=project, max_cores=2)
    ids = launch(routine_in(project, alice, command="sleep 1"), alice, 8, required_cores=1)
    assert len(admitted(ids)) == 2
    start_worker("local", concurrency=4)
    peak, deadline = 0, time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = list(Job.objects.filter(pk__in=ids).values_list("status", flat=True))
        peak = max(peak, sum(s in ("BUILDING", "MAPPING_INPUTS", "RUNNING", "MAPPING_OUTPUTS") for s in rows))
        if all(s == Status.SUCCEEDED for s in rows):
            break
        assert not any(s in ("FAILED", "CANCELLED", "TIMED_OUT") for s in rows), rows
        time.sleep(0.2)
    assert peak <= 2, f"{peak} jobs ran at once under a 2-core quota"
    for job_id in ids:
        wait_for_status(job_id, Status.SUCCEEDED, timeout=1)

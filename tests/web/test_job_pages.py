"""Job and jobflow run pages: what they show, cancel, re-run, retry, the log download; the DAG layout."""

import json

import pytest

from accelerator.crypto import decrypt_json, encrypt_json
from jobflows.services import dispatch_flow
from jobs.models import Job, JobOutput, LogChunk
from jobs.states import Status
from web import layout
from workers import dispatch

pytestmark = pytest.mark.django_db


def run(routine, user, **conf):
    return dispatch.run_routine(routine=routine, user=user, conf=conf, secrets={"KEY": "sekret"})


def flow(project, user):
    node = lambda key: {"id": key, "name": key, "job_kwargs": {"docker_image": "busybox", "command": "true"}}  # noqa: E731
    body = {"format": "acc-dag/1", "nodes": [node("a"), node("b"), node("c")], "edges": [["a", "b"], ["a", "c"]]}
    return dispatch_flow(project=project, user=user, body=body)


def test_the_job_page_shows_status_timeline_outputs_resources_and_conf(signed_in, project, alice, bob, routine):
    job = run(routine, alice, WHO="Ada")
    Job.objects.filter(pk=job.pk).update(peak_memory_bytes=3 * 1024**2)
    JobOutput.objects.create(job=job, path="out/r.txt", size=5, sha256="ab" * 32)
    text = signed_in(bob).get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="status-badge" class="badge big status-QUEUED"' in text
    assert 'data-phase="RUNNING"' in text and "3.0\xa0MB" in text
    assert 'href="/api/v1/projects/demo/files/out/r.txt"' in text
    assert "Ada" in text and "sekret" not in text
    assert f'href="/jobs/{job.pk}/log.txt"' in text


def test_strangers_do_not_see_a_job(signed_in, project, alice, charlie, routine):
    job = run(routine, alice)
    assert signed_in(charlie).get(f"/jobs/{job.pk}/").status_code == 404
    assert signed_in(charlie).get(f"/jobs/{job.pk}/log.txt").status_code == 404


def test_a_reused_job_says_from_where(signed_in, project, alice, routine):
    original = run(routine, alice)
    copy = run(routine, alice)
    Job.objects.filter(pk=copy.pk).update(status=Status.SUCCEEDED, reused_from=original, cache_note="same identity")
    text = signed_in(alice).get(f"/jobs/{copy.pk}/").content.decode()
    assert f'Reused from <a href="/jobs/{original.pk}/">#{original.pk}</a>' in text
    assert f'data-url="/api/v1/jobs/{copy.pk}/why/"' in text


def test_the_whole_log_downloads_in_order(signed_in, project, alice, routine):
    job = run(routine, alice)
    LogChunk.objects.create(job=job, seq=2, text="second\n")
    LogChunk.objects.create(job=job, seq=1, text="first\n")
    response = signed_in(alice).get(f"/jobs/{job.pk}/log.txt")
    assert b"".join(response.streaming_content) == b"first\nsecond\n"
    assert response["Content-Disposition"] == f'attachment; filename="job-{job.pk}.log"'


def test_cancel_from_the_page(signed_in, project, alice, bob, routine):
    job = run(routine, alice)
    assert signed_in(bob).post(f"/jobs/{job.pk}/cancel/").status_code == 403
    response = signed_in(alice).post(f"/jobs/{job.pk}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert Job.objects.get(pk=job.pk).status == Status.CANCELLED


def test_rerun_submits_the_same_conf_secrets_and_resources(signed_in, project, alice, routine):
    job = run(routine, alice, WHO="Ada")
    Job.objects.filter(pk=job.pk).update(required_cores=2.5, timeout=77)  # e.g. dispatched by accli with its own
    response = signed_in(alice).post(f"/jobs/{job.pk}/rerun/", {"force_build": "on"})
    again = Job.objects.exclude(pk=job.pk).get()
    assert response["Location"] == f"/jobs/{again.pk}/"
    assert again.conf == job.conf and again.force_build
    assert (again.required_cores, again.timeout) == (2.5, 77)
    assert decrypt_json(again.secrets_encrypted) == {"KEY": "sekret"}
    assert signed_in(alice).post(f"/jobs/{job.pk}/rerun/", {"force_build": "yes"}).status_code == 400


def test_the_run_page_draws_the_dag_and_offers_retry_only_when_failed(signed_in, project, alice):
    root = flow(project, alice)
    text = signed_in(alice).get(f"/jobs/{root.pk}/").content.decode()
    assert text.count('class="node"') == 3 and text.count('class="edge"') == 2
    assert 'id="retry-button"' not in text and 'id="cancel-button"' in text
    Job.objects.filter(pk=root.pk).update(status=Status.FAILED)
    assert 'id="retry-button"' in signed_in(alice).get(f"/jobs/{root.pk}/").content.decode()
    rerun = signed_in(alice).post(f"/jobs/{root.pk}/rerun/")
    assert rerun.status_code == 400 and "retry" in rerun.content.decode()


def test_retry_of_a_running_flow_is_explained(signed_in, project, alice):
    root = flow(project, alice)
    response = signed_in(alice).post(f"/jobs/{root.pk}/retry/")
    assert response.status_code == 400 and "only a FAILED or CANCELLED run" in response.content.decode()


def test_layout_places_nodes_by_depth_left_to_right():
    drawn = layout.layout(["a", "b", "c", "d"], [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"], ["a", "d"]])
    boxes = drawn["boxes"]
    assert [boxes[k].depth for k in "abcd"] == [0, 1, 1, 2]
    assert boxes["b"].x == boxes["c"].x and boxes["b"].y < boxes["c"].y
    assert boxes["a"].x < boxes["b"].x < boxes["d"].x
    assert len(drawn["edges"]) == 5 and drawn["edges"][0]["d"].startswith("M")
    assert drawn["width"] > boxes["d"].x and drawn["height"] > boxes["c"].y


def test_secrets_of_a_job_are_never_on_its_page(signed_in, project, alice, routine):
    job = run(routine, alice)
    Job.objects.filter(pk=job.pk).update(secrets_encrypted=encrypt_json({"KEY": "sekret"}))
    assert "sekret" not in signed_in(alice).get(f"/jobs/{job.pk}/").content.decode()
    assert json.dumps("sekret") not in signed_in(alice).get(f"/routines/{routine.pk}/").content.decode()

"""The build-system cache for single jobs: reuse, join, control, why, and the job directory."""

import io
import json
import time
import zipfile

import pytest

from files import services as files
from jobs.models import Job
from routines import services as routines
from tests.conftest import wait_for_status

URL = "/api/v1/aterm-cli/{slug}/jobs/dispatch/"


def node(command, *, conf=None, secrets=None, name="square", **extra):
    kwargs = {"docker_image": "acc-test/busybox:latest", "command": command, "conf": conf or {}}
    kwargs.update(extra.pop("kw", {}))
    return {
        "is_holder_job": False,
        "name": name,
        "execute_cluster": "WKUBE",
        "job_args": [],
        "job_kwargs": kwargs,
        "required_cores": 0.5,
        "required_ram": 268435456.0,
        "timeout": 60,
        "job_secrets": secrets or {},
        "children": [],
        "callback": None,
        **extra,
    }


COUNT = node(
    "mkdir -p out; wc -l < in/numbers.txt > out/count.txt; echo counted",
    conf={"input_mappings": "acc://data/numbers.txt:/code/in/", "output_mappings": "/code/out/:acc://results/"},
)


def write(project, path, data: bytes):
    files.write_file(project=project, relpath=path, stream=io.BytesIO(data))


def dispatch(api, user, body, slug="demo"):
    started = time.perf_counter()
    response = api(user).post(URL.format(slug=slug), body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["job_id"], time.perf_counter() - started


def detail(api, user, job_id):
    return api(user).get(f"/api/v1/jobs/{job_id}/").json()


def read(api, user, path, slug="demo"):
    return b"".join(api(user).get(f"/api/v1/projects/{slug}/files/{path}").streaming_content)


@pytest.fixture
def numbers(project):
    write(project, "data/numbers.txt", b"1\n2\n3\n")
    return project


def test_an_identical_dispatch_returns_the_stored_result_at_once(start_worker, api, numbers, alice):
    start_worker("local")
    first, _ = dispatch(api, alice, COUNT)
    assert wait_for_status(first, "SUCCEEDED").status == "SUCCEEDED"
    assert read(api, alice, "results/count.txt").strip() == b"3"

    second, _ = dispatch(api, alice, COUNT)
    body = detail(api, alice, second)  # no waiting: it is final in the dispatch response already
    assert body["status"] == "SUCCEEDED" and body["reused_from"] == first
    assert body["running_at"] is None, "no container or process was started"
    assert body["cache_key"] == detail(api, alice, first)["cache_key"]
    assert [(o["path"], o["sha256"]) for o in body["outputs"]] == [
        (o["path"], o["sha256"]) for o in detail(api, alice, first)["outputs"]
    ]
    log = api(alice).get(f"/api/v1/jobs/{second}/logs/").json()["chunks"]
    assert f"Reused the result of job #{first}" in log[0]["text"]

    why = api(alice).get(f"/api/v1/jobs/{second}/why/").json()
    assert why["reused"] is True and why["reused_from"] == first and why["nearest"]["differences"] == []


def test_editing_an_input_reruns_and_why_names_the_difference(start_worker, api, numbers, alice):
    start_worker("local")
    first, _ = dispatch(api, alice, COUNT)
    wait_for_status(first, "SUCCEEDED")
    write(numbers, "data/numbers.txt", b"1\n2\n3\n4\n")
    second, _ = dispatch(api, alice, COUNT)
    assert wait_for_status(second, "SUCCEEDED").status == "SUCCEEDED"
    assert detail(api, alice, second)["reused_from"] is None
    assert read(api, alice, "results/count.txt").strip() == b"4"
    why = api(alice).get(f"/api/v1/jobs/{second}/why/").json()
    assert why["reused"] is False and why["nearest"]["id"] == first
    assert why["nearest"]["differences"] == ["inputs.acc://data/numbers.txt -> /code/in/."]


def test_outputs_changed_since_are_never_handed_out(start_worker, api, numbers, alice):
    start_worker("local")
    first, _ = dispatch(api, alice, COUNT)
    wait_for_status(first, "SUCCEEDED")
    write(numbers, "results/count.txt", b"tampered\n")
    second, _ = dispatch(api, alice, COUNT)
    assert wait_for_status(second, "SUCCEEDED").status == "SUCCEEDED"
    assert Job.objects.get(pk=second).reused_from_id is None
    assert read(api, alice, "results/count.txt").strip() == b"3"
    assert "changed since" in api(alice).get(f"/api/v1/jobs/{second}/why/").json()["explanation"]


def test_force_build_reruns_and_the_newest_success_wins(start_worker, api, numbers, alice):
    start_worker("local")
    first, _ = dispatch(api, alice, COUNT)
    wait_for_status(first, "SUCCEEDED")
    forced_body = json.loads(json.dumps(COUNT))
    forced_body["job_kwargs"]["force_build"] = True
    forced, _ = dispatch(api, alice, forced_body)
    assert wait_for_status(forced, "SUCCEEDED").status == "SUCCEEDED"
    assert Job.objects.get(pk=forced).reused_from_id is None
    assert "force_build" in api(alice).get(f"/api/v1/jobs/{forced}/why/").json()["explanation"]
    third, _ = dispatch(api, alice, COUNT)
    assert detail(api, alice, third)["reused_from"] == forced


def test_a_non_deterministic_routine_is_never_reused(start_worker, api, numbers, alice):
    start_worker("local")
    body = {**node("date +%s%N > /dev/null"), "deterministic": False}
    first, _ = dispatch(api, alice, body)
    wait_for_status(first, "SUCCEEDED")
    second, _ = dispatch(api, alice, body)
    assert wait_for_status(second, "SUCCEEDED").status == "SUCCEEDED"
    job = Job.objects.get(pk=second)
    assert job.reused_from_id is None and job.running_at is not None
    assert "non-deterministic" in job.cache_note


def test_secrets_are_part_of_the_identity_but_never_in_it(start_worker, api, numbers, alice):
    start_worker("local")
    first, _ = dispatch(api, alice, node("true", secrets={"TOKEN": "s3cret-one"}))
    wait_for_status(first, "SUCCEEDED")
    other, _ = dispatch(api, alice, node("true", secrets={"TOKEN": "s3cret-two"}))
    assert wait_for_status(other, "SUCCEEDED").status == "SUCCEEDED"
    assert Job.objects.get(pk=other).reused_from_id is None
    same, _ = dispatch(api, alice, node("true", secrets={"TOKEN": "s3cret-one"}))
    assert Job.objects.get(pk=same).reused_from_id == first
    document = json.dumps(Job.objects.get(pk=first).identity)
    assert "s3cret" not in document
    why = api(alice).get(f"/api/v1/jobs/{other}/why/").json()
    assert "secrets" in why["nearest"]["differences"]


def test_an_identical_running_job_is_joined_not_started_twice(start_worker, api, numbers, alice):
    start_worker("local", concurrency=2)
    slow = node("sleep 2; echo done > /tmp/never-read", name="slow")
    first, _ = dispatch(api, alice, slow)
    second, _ = dispatch(api, alice, slow)
    joined = Job.objects.get(pk=second)
    assert joined.status == "PENDING" and joined.reused_from_id == first
    assert wait_for_status(second, {"SUCCEEDED", "FAILED"}, timeout=30).status == "SUCCEEDED"
    joined.refresh_from_db()
    assert joined.reused_from_id == first and joined.running_at is None
    assert Job.objects.get(pk=first).status == "SUCCEEDED"


def test_a_joiner_runs_itself_when_the_original_is_cancelled(start_worker, api, numbers, alice, bob):
    start_worker("local", concurrency=2)
    slow = node("sleep 3", name="slow")
    first, _ = dispatch(api, alice, slow)
    second, _ = dispatch(api, bob, slow)
    assert Job.objects.get(pk=second).reused_from_id == first
    api(alice).post(f"/api/v1/jobs/{first}/cancel/")
    assert wait_for_status(first, "CANCELLED", timeout=15)
    job = wait_for_status(second, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=30)
    assert job.status == "SUCCEEDED" and job.reused_from_id is None and job.running_at is not None
    assert "ended CANCELLED" in job.cache_note


def test_a_user_without_access_gets_no_reuse_until_given_access(start_worker, api, numbers, alice, charlie):
    start_worker("local")
    first, _ = dispatch(api, alice, COUNT)
    wait_for_status(first, "SUCCEEDED")
    own = routines.create_project(user=charlie, slug="charlies", name="Charlie's")
    write(own, "data/numbers.txt", b"1\n2\n3\n")

    theirs, _ = dispatch(api, charlie, COUNT, slug="charlies")
    assert wait_for_status(theirs, "SUCCEEDED").status == "SUCCEEDED"
    job = Job.objects.get(pk=theirs)
    assert job.reused_from_id is None and job.running_at is not None, "alice's job must not be reused"
    assert api(charlie).get(f"/api/v1/jobs/{theirs}/why/").json()["nearest"] is None, "nothing of alice's shows"

    routines.set_member(project=numbers, actor=alice, username="charlie", role="viewer")
    write(own, "results/count.txt", b"edited by charlie\n")  # his own result changed: only alice's is intact
    again, _ = dispatch(api, charlie, COUNT, slug="charlies")
    assert Job.objects.get(pk=again).reused_from_id == first
    assert read(api, charlie, "results/count.txt", slug="charlies").strip() == b"3", "outputs copied in place"


def test_the_job_directory_holds_everything_about_a_result(start_worker, api, numbers, alice, charlie):
    start_worker("local")
    first, _ = dispatch(api, alice, COUNT)
    wait_for_status(first, "SUCCEEDED")
    second, _ = dispatch(api, alice, COUNT)
    assert api(charlie).get(f"/api/v1/jobs/{first}/directory/").status_code == 404
    for job_id in (first, second):
        response = api(alice).get(f"/api/v1/jobs/{job_id}/directory/")
        assert response.status_code == 200 and response["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        names = {n.split("/", 1)[1] for n in archive.namelist()}
        assert {"job.json", "identity.json", "code.json", "log.txt", "outputs.json", "profiling.json"} <= names

        def read_json(name, archive=archive, job_id=job_id):
            return json.loads(archive.read(f"job-{job_id}/{name}"))

        ident = read_json("identity.json")
        assert ident["document"]["command"] == COUNT["job_kwargs"]["command"]
        assert ident["document"]["inputs"]["acc://data/numbers.txt -> /code/in/"]
        outputs = read_json("outputs.json")
        assert outputs[0]["path"] == "results/count.txt" and len(outputs[0]["sha256"]) == 64
        profile = read_json("profiling.json")
        if job_id == first:
            assert "running" in profile["phases_seconds"]
            assert "counted" in archive.read(f"job-{job_id}/log.txt").decode()
        else:
            assert profile["reused_from"] == first and profile["time_saved_seconds"] > 0

"""Jobs through the whole platform (API -> Celery worker -> backend), on `local` and `docker`."""

import os
import subprocess
import time

import pytest

from jobs.models import Job, JobOutput
from routines import services
from tests.conftest import wait_for_status
from tests.kube_fixtures import pods_of

BACKENDS = [
    pytest.param("local"),
    pytest.param("docker", marks=pytest.mark.docker),
    pytest.param("kubernetes", marks=pytest.mark.kubernetes),
]


def make_routine(project, user, command, *, name="t", conf=None, image="acc-test/busybox:latest", **node):
    task = {"name": name, "job_kwargs": {"docker_image": image, "command": command, "conf": conf or {}}, **node}
    return services.save_routine(project=project, user=user, task=task)


def run(api, user, routine, **body):
    response = api(user).post(f"/api/v1/routines/{routine.pk}/run/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def log_text(api, user, job_id) -> str:
    body = api(user).get(f"/api/v1/jobs/{job_id}/logs/").json()
    return "".join(c["text"] for c in body["chunks"])


def containers_of(job_id) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=acc.job={job_id}"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    return out.stdout.split()


def nothing_left(backend, job):
    if backend == "docker":
        assert containers_of(job.pk) == [], "the container must be removed"
    elif backend == "kubernetes":
        assert pods_of(job.pk) == [], "the pod must be removed"
    else:
        pid = (job.backend_state or {}).get("pid")
        assert pid and not os.path.exists(f"/proc/{pid}") or _is_zombie(pid), "the process must be gone"


def _is_zombie(pid) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("backend", BACKENDS)
def test_job_succeeds_streams_logs_and_stores_outputs(backend, start_worker, api, project, alice):
    start_worker(backend)
    routine = make_routine(
        project,
        alice,
        'mkdir -p out; for i in 1 2 3; do echo "line $i for $WHO"; sleep 0.4; done; echo done > out/result.txt',
        conf={"WHO": "ada", "output_mappings": "/code/out/:acc://demo/results/"},
    )
    job_id = run(api, alice, routine)
    wait_for_status(job_id, "RUNNING", timeout=30)
    seen_while_running = ""
    deadline = time.monotonic() + 10
    while "line 1 for ada" not in seen_while_running and time.monotonic() < deadline:
        seen_while_running = log_text(api, alice, job_id)
        time.sleep(0.1)
    assert "line 1 for ada" in seen_while_running
    assert Job.objects.get(pk=job_id).status == "RUNNING", "logs must be readable while the job runs"

    job = wait_for_status(job_id, "SUCCEEDED", timeout=60)
    text = log_text(api, alice, job_id)
    assert all(f"line {i} for ada" in text for i in (1, 2, 3))
    detail = api(alice).get(f"/api/v1/jobs/{job_id}/").json()
    assert detail["exit_code"] == 0
    assert all(detail[k] for k in ("queued_at", "mapping_inputs_at", "running_at", "mapping_outputs_at", "finished_at"))
    assert [o["path"] for o in detail["outputs"]] == ["results/result.txt"]
    download = api(alice).get("/api/v1/projects/demo/files/results/result.txt")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"done\n"
    assert [e["status"] for e in detail["events"]] == [
        "QUEUED",
        "MAPPING_INPUTS",
        "RUNNING",
        "MAPPING_OUTPUTS",
        "SUCCEEDED",
    ]
    nothing_left(backend, job)


@pytest.mark.parametrize("backend", BACKENDS)
def test_failing_command_fails_with_exit_code_and_still_stores_outputs(backend, start_worker, api, project, alice):
    start_worker(backend)
    routine = make_routine(
        project,
        alice,
        "mkdir -p out; echo partial > out/p.txt; echo boom >&2; exit 3",
        conf={"output_mappings": "/code/out/:acc://demo/failed/"},
    )
    job = wait_for_status(run(api, alice, routine), "FAILED", timeout=60)
    assert job.exit_code == 3 and job.error_code == "exit"
    assert "exited with code 3" in job.message
    assert list(JobOutput.objects.filter(job=job).values_list("path", flat=True)) == ["failed/p.txt"]
    assert "boom" in log_text(api, alice, job.pk)


@pytest.mark.parametrize("backend", BACKENDS)
def test_timeout_ends_timed_out_and_leaves_nothing_behind(backend, start_worker, api, project, alice):
    start_worker(backend)
    routine = make_routine(project, alice, "echo started; sleep 60", timeout=2)
    job = wait_for_status(run(api, alice, routine), "TIMED_OUT", timeout=40)
    assert job.error_code == "timeout" and "timeout of 2 s" in job.message
    nothing_left(backend, job)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancel_stops_a_running_job_within_five_seconds(backend, start_worker, api, project, alice):
    start_worker(backend)
    routine = make_routine(project, alice, "echo started; sleep 120")
    job_id = run(api, alice, routine)
    wait_for_status(job_id, "RUNNING", timeout=30)
    started = time.monotonic()
    response = api(alice).post(f"/api/v1/jobs/{job_id}/cancel/")
    assert response.status_code in (200, 202)
    job = wait_for_status(job_id, "CANCELLED", timeout=5)
    assert time.monotonic() - started < 5
    nothing_left(backend, job)


def test_cancel_of_a_queued_job_is_immediate_and_of_a_finished_job_a_noop(api, project, alice, transactional_db):
    routine = make_routine(project, alice, "true")
    job_id = run(api, alice, routine)  # no worker: stays QUEUED
    assert api(alice).post(f"/api/v1/jobs/{job_id}/cancel/").json()["status"] == "CANCELLED"
    again = api(alice).post(f"/api/v1/jobs/{job_id}/cancel/")
    assert again.status_code == 200 and again.json()["status"] == "CANCELLED"


def test_strangers_cannot_see_or_cancel_jobs(api, project, alice, charlie, transactional_db):
    job_id = run(api, alice, make_routine(project, alice, "true"))
    assert api(charlie).get(f"/api/v1/jobs/{job_id}/").status_code == 404
    assert api(charlie).get(f"/api/v1/jobs/{job_id}/logs/").status_code == 404
    assert api(charlie).post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 404
    assert api(charlie).get("/api/v1/jobs/").json()["results"] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_secrets_reach_the_job_but_never_logs_or_api(backend, start_worker, api, project, alice):
    start_worker(backend)
    secret = "s3cr3t-Value-987"
    routine = make_routine(project, alice, 'echo "key=$API_KEY"; echo "again $API_KEY" >&2')
    job_id = run(api, alice, routine, secrets={"API_KEY": secret})
    job = wait_for_status(job_id, "SUCCEEDED", timeout=60)
    text = log_text(api, alice, job_id)
    assert "key=********" in text and "again ********" in text
    for url in (
        f"/api/v1/jobs/{job_id}/",
        f"/api/v1/jobs/{job_id}/logs/",
        "/api/v1/jobs/",
        f"/api/v1/routines/{routine.pk}/",
    ):
        assert secret not in api(alice).get(url).content.decode()
    assert secret.encode() not in bytes(job.secrets_encrypted)


@pytest.mark.parametrize("backend", BACKENDS[1:])
def test_out_of_memory_is_said_plainly(backend, start_worker, api, project, alice):
    start_worker(backend)
    routine = make_routine(
        project,
        alice,
        "python -c 'x = bytearray(400 * 1024 * 1024); print(len(x))'",
        image="acc-test/python:latest",
        required_ram=64 * 1024 * 1024,
    )
    job = wait_for_status(run(api, alice, routine), "FAILED", timeout=60)
    assert job.error_code == "oom"
    assert "Out of memory" in job.message and "64 MiB" in job.message


def test_git_code_source_is_cloned_and_its_commit_recorded(start_worker, api, project, alice, tmp_path, settings):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "run.sh").write_text("echo from git at $(cat VERSION)\n")
    (repo / "VERSION").write_text("v1\n")
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()

    settings.ACC_GIT_ALLOW_FILE = True
    start_worker("local", extra_env={"ACC_GIT_ALLOW_FILE": "1"})
    task = {
        "name": "from-git",
        "job_kwargs": {
            "docker_image": "acc-test/busybox:latest",
            "command": "sh run.sh",
            "repo_url": f"file://{repo}",
            "repo_branch": "main",
        },
    }
    routine = services.save_routine(project=project, user=alice, task=task)
    job = wait_for_status(run(api, alice, routine), {"SUCCEEDED", "FAILED"}, timeout=60)
    assert job.status == "SUCCEEDED", job.message
    assert job.code_commit == commit
    assert "from git at v1" in log_text(api, alice, job.pk)


def test_local_jobs_do_not_inherit_the_platforms_credentials(start_worker, api, project, alice):
    start_worker("local", extra_env={"ACC_SECRETS_KEY": "platform-only-key", "AWS_SECRET_ACCESS_KEY": "aws-only"})
    routine = make_routine(project, alice, "env; echo end-of-env")
    job = wait_for_status(run(api, alice, routine), "SUCCEEDED", timeout=60)
    text = log_text(api, alice, job.pk)
    assert "end-of-env" in text and "ACC_JOB_ID=" in text
    for leaked in ("platform-only-key", "aws-only", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        assert leaked not in text


@pytest.mark.parametrize("backend", BACKENDS[1:])
def test_an_image_that_cannot_be_had_fails_the_job_clearly_within_a_minute(backend, start_worker, api, project, alice):
    start_worker(backend)
    routine = make_routine(project, alice, "echo never", image="acc-test/no-such-image:1")
    started = time.monotonic()
    job = wait_for_status(run(api, alice, routine), ["FAILED", "SUCCEEDED"], timeout=60)
    assert time.monotonic() - started < 60
    assert job.status == "FAILED" and job.error_code == "image", job.message
    assert "acc-test/no-such-image:1" in job.message
    nothing_left(backend, job)

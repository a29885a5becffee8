"""Running jobs belong to the supervisor: a worker slot is free once its job runs, and neither a killed
supervisor nor a killed worker loses, repeats or strands a job (issue 14)."""

import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from backends import get_backend
from jobs.models import Job
from jobs.states import Status
from tests.conftest import wait_for_status
from tests.workers.test_jobs import BACKENDS, log_text, make_routine, nothing_left, run
from workers import runner
from workers.services import reconcile_jobs


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("[")]  # the job's own lines


@pytest.mark.parametrize("backend", BACKENDS)
def test_more_jobs_run_at_once_than_the_worker_has_slots(backend, start_worker, api, project, alice):
    start_worker(backend, concurrency=1)
    ids = [run(api, alice, make_routine(project, alice, f"echo up {i}; sleep 30", name=f"t{i}")) for i in range(3)]
    for job_id in ids:
        wait_for_status(job_id, "RUNNING", timeout=60)
    assert Job.objects.filter(pk__in=ids, status="RUNNING").count() == 3  # one slot, three running together
    for job_id in ids:
        api(alice).post(f"/api/v1/jobs/{job_id}/cancel/")
    for job_id in ids:
        assert wait_for_status(job_id, "CANCELLED", timeout=30).status == "CANCELLED"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_restarted_supervisor_resumes_the_log_without_a_gap_or_a_repeat(backend, start_worker, api, project, alice):
    worker = start_worker(backend)
    command = "for i in $(seq 1 40); do echo line-$i; sleep 0.1; done; sleep 2; echo last"
    job_id = run(api, alice, make_routine(project, alice, command))
    wait_for_status(job_id, "RUNNING", timeout=60)
    deadline = time.monotonic() + 30
    while "line-5" not in log_text(api, alice, job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    worker.kill_supervisor()  # mid-stream
    time.sleep(1)
    worker.start_supervisor()
    job = wait_for_status(job_id, "SUCCEEDED", timeout=60)
    assert job.status == "SUCCEEDED", job.message
    assert _lines(log_text(api, alice, job_id)) == [f"line-{i}" for i in range(1, 41)] + ["last"]
    nothing_left(backend, job)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_job_that_ends_while_nothing_watches_is_settled_with_its_exit_code_and_logs(
    backend, start_worker, api, project, alice
):
    worker = start_worker(backend)
    job_id = run(api, alice, make_routine(project, alice, "echo started; sleep 3; echo finished; exit 3"))
    wait_for_status(job_id, "RUNNING", timeout=60)
    worker.kill()  # the worker and the supervisor, as a crash would
    time.sleep(5)  # the job ends meanwhile; nobody is there to see it
    assert Job.objects.get(pk=job_id).status == "RUNNING"
    start_worker(backend)
    job = wait_for_status(job_id, ["FAILED"], timeout=60)
    assert job.status == "FAILED" and job.exit_code == 3 and job.error_code == "exit", job.message
    assert _lines(log_text(api, alice, job_id)) == ["started", "finished"]
    assert job.events.filter(status="RUNNING").count() == 1  # it ran once
    nothing_left(backend, job)


class _WorkerDied(BaseException):
    """A worker killed between starting the job on the backend and marking it RUNNING (nothing catches it)."""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_job_whose_worker_died_just_after_starting_it_runs_once_to_its_true_end(
    backend, start_worker, api, project, alice, monkeypatch
):
    job_id = run(api, alice, make_routine(project, alice, "echo begun; sleep 2; echo done; exit 4"))  # no worker yet
    real_transition = runner.transition

    def dies_before_running(pk, status, **fields):
        if status == Status.RUNNING:
            raise _WorkerDied
        return real_transition(pk, status, **fields)

    monkeypatch.setattr(runner, "transition", dies_before_running)
    with pytest.raises(_WorkerDied):
        runner.JobRunner(Job.objects.get(pk=job_id), backend=get_backend(backend)).run()
    monkeypatch.undo()
    assert Job.objects.get(pk=job_id).status == "MAPPING_INPUTS"  # started on the backend, but nobody knows
    Job.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))  # its worker is gone

    assert reconcile_jobs()["adopted"] == 1  # found running (or ended) on the backend: not failed, not re-run
    start_worker(backend)  # its supervisor follows it to the end; the stale start message changes nothing
    job = wait_for_status(job_id, ["FAILED", "SUCCEEDED"], timeout=60)
    assert job.status == "FAILED" and job.exit_code == 4 and job.error_code == "exit", job.message
    assert _lines(log_text(api, alice, job_id)) == ["begun", "done"]
    assert job.events.filter(status="RUNNING").count() == 1
    assert job.events.filter(status="MAPPING_INPUTS").count() == 1  # it started once
    nothing_left(backend, job)


def test_a_local_jobs_output_takes_disk_only_until_it_is_stored(start_worker, api, project, alice):
    """output.log keeps its size and offsets, but the blocks of what is stored go back to the disk while the job
    still runs: a job that prints for days does not fill the worker's disk."""
    start_worker("local")
    size = 8 * 1024 * 1024
    command = f"yes 0123456789abcdef0123456789abcdef | head -c {size}; echo; echo end-of-output; sleep 60"
    job_id = run(api, alice, make_routine(project, alice, command))
    wait_for_status(job_id, "RUNNING", timeout=60)
    deadline = time.monotonic() + 120
    while "end-of-output" not in log_text(api, alice, job_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "end-of-output" in log_text(api, alice, job_id)
    path = Job.objects.get(pk=job_id).backend_state["log_path"]
    deadline = time.monotonic() + 10
    while os.stat(path).st_blocks * 512 > 512 * 1024 and time.monotonic() < deadline:
        time.sleep(0.2)  # the hole follows the last stored chunk
    on_disk = os.stat(path)
    assert on_disk.st_size > size  # every offset stays valid for a resume...
    assert on_disk.st_blocks * 512 <= 512 * 1024, on_disk  # ...but the stored output no longer takes disk space
    api(alice).post(f"/api/v1/jobs/{job_id}/cancel/")
    assert wait_for_status(job_id, "CANCELLED", timeout=30).status == "CANCELLED"

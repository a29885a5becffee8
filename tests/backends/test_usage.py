"""Resource usage sampling: a busy process group shows its CPU and memory; the recorder keeps the peak."""

import os
import subprocess
import sys
import time

import pytest

from backends.usage import UsageRecorder, docker_stats_usage, process_group_usage
from web.charts import usage_charts


def test_a_busy_process_group_reports_cpu_time_and_memory():
    burn = "import time\nx = bytearray(64 * 1024 * 1024)\nend = time.time() + 1.0\nwhile time.time() < end: pass\n"
    proc = subprocess.Popen([sys.executable, "-c", burn], start_new_session=True)
    try:
        time.sleep(0.8)
        cpu, memory = process_group_usage(os.getpgid(proc.pid))
    finally:
        proc.wait(10)
    assert cpu >= 0.3 and memory >= 64 * 1024 * 1024
    assert process_group_usage(proc.pid) is None, "a finished group has nothing to report"


def test_the_recorder_keeps_the_peak_when_it_merges_samples():
    recorder = UsageRecorder(every=1.0, max_points=10)
    for i in range(50):
        recorder.add(float(i), cpu_seconds=i * 0.5, memory=900 if i == 7 else 100)
    summary = recorder.summary()
    assert len(recorder.samples) <= 10 and summary["peak_memory_bytes"] == 900
    assert summary["cpu_seconds"] == 24.5 and max(p[2] for p in summary["points"]) == 900
    assert all(abs(p[1] - 0.5) < 1e-9 for p in summary["points"]), "half a core throughout"


def test_docker_stats_leave_out_the_page_cache():
    reading = {
        "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}},
        "memory_stats": {"usage": 300, "stats": {"inactive_file": 100}},
    }
    assert docker_stats_usage(reading) == (2.5, 200)
    assert docker_stats_usage({"cpu_stats": {}, "memory_stats": {}}) is None


def test_charts_scale_to_at_least_what_was_requested():
    usage = {"points": [[1.0, 0.5, 100], [2.0, 1.0, 200]]}
    cpu, memory = usage_charts(usage, cores_requested=2.0, ram_requested=1000)
    assert cpu["top"] == 2.0 and cpu["peak"] == 1.0 and memory["top"] == 1000 and memory["peak"] == 200
    assert usage_charts({"points": [[1.0, 0.5, 100]]}, cores_requested=1, ram_requested=1) is None


BURN = (
    "import time\n"
    "x = bytearray(48 * 1024 * 1024)\n"
    "for i in range(0, len(x), 4096): x[i] = 1\n"
    "while time.process_time() < 4.0: pass\n"  # CPU time: load only makes it longer; 3 readings 1 s apart
    "print('burnt')\n"
)


@pytest.mark.parametrize("backend", [pytest.param("local"), pytest.param("docker", marks=pytest.mark.docker)])
@pytest.mark.django_db(transaction=True)
def test_the_job_page_charts_the_cpu_and_memory_a_job_used(backend, settings, start_worker, client, project, alice):
    from rest_framework.test import APIClient

    from accounts.services import issue_token_pair
    from tests.conftest import wait_for_status
    from tests.workers.test_jobs import make_routine, run

    settings.ACC_BACKEND = backend
    start_worker(backend)
    python = "python3" if backend == "local" else "python"
    routine = make_routine(project, alice, f'{python} -c "$BURN"', conf={"BURN": BURN}, image="acc-test/python:latest")
    api = APIClient()
    api.credentials(HTTP_X_AUTHORIZATION=issue_token_pair(user=alice)["access_token"])
    job = wait_for_status(run(lambda user: api, alice, routine), "SUCCEEDED", timeout=90)
    assert job.cpu_seconds >= 1.0, job.usage
    assert job.peak_memory_bytes >= 40 * 1024 * 1024, job.usage
    assert len(job.usage["points"]) >= 2
    client.force_login(alice)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="chart-cpu"' in page and 'id="chart-memory"' in page and 'id="peak-memory"' in page

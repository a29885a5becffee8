"""Resource usage sampling: a busy process group shows its CPU and memory; the recorder keeps the peak."""

import os
import subprocess
import sys
import time

from web.charts import usage_charts
from workers.usage import UsageRecorder, docker_stats_usage, process_group_usage


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

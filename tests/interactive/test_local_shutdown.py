"""A local session stops with the platform: when its worker stops, nothing of the session is left running.

In a module of its own, so that no other worker of the test run can take the session's job.
"""

from __future__ import annotations

import os
import time

import httpx

from jobs.models import Job
from tests.conftest import Worker
from tests.interactive.conftest import cookies_for, echo_routine, free_port, run, session_url


def processes_of_group(pgid: int) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(state[2]) == pgid and state[0] != "Z":
            found.append(int(pid))
    return found


def test_stopping_the_worker_ends_its_local_sessions(transactional_db, settings, web, api, project, alice):
    settings.ACC_BACKEND = "local"
    settings.ACC_INTERACTIVE_BASE_URL = web.sessions
    worker = Worker("local", extra_env=web.env)
    try:
        job_id = run(api, alice, echo_routine(project, alice, socket_=f"0.0.0.0:{free_port()}", timeout=3600))
        url = session_url(job_id)
        assert httpx.get(url, cookies=cookies_for(alice), timeout=10).status_code == 200
        pgid = Job.objects.get(pk=job_id).backend_state["pid"]
        assert processes_of_group(pgid), "the session runs"
    finally:
        worker.stop()  # TERM, as `make run` stops it; SIGKILL after 15 s
    deadline = time.monotonic() + 10
    while processes_of_group(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_of_group(pgid) == [], "nothing of the session outlives its worker"
    assert httpx.get(url, cookies=cookies_for(alice), timeout=10).status_code != 200
    job = Job.objects.get(pk=job_id)
    assert job.is_final, f"the session's job was ended, not left {job.status}"

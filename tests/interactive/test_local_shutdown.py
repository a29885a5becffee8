"""A local session belongs to the platform, not to the worker that started it: a crashed worker and supervisor
do not end it, the next supervisor adopts it, and its owner's stop still ends it with nothing left running.

In a module of its own, so that no other worker of the test run can take the session's job.
"""

from __future__ import annotations

import os

import httpx

from jobs.models import Job
from tests.conftest import Worker, wait_for_status
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


def test_a_local_session_outlives_a_crashed_worker_and_is_adopted(transactional_db, settings, web, api, project, alice):
    settings.ACC_BACKEND = "local"
    settings.ACC_INTERACTIVE_BASE_URL = web.sessions
    worker = Worker("local", extra_env=web.env)
    try:
        job_id = run(api, alice, echo_routine(project, alice, socket_=f"0.0.0.0:{free_port()}", timeout=3600))
        url = session_url(job_id)
        assert httpx.get(url, cookies=cookies_for(alice), timeout=10).status_code == 200
        pgid = Job.objects.get(pk=job_id).backend_state["pid"]
        worker.kill()  # the worker and the supervisor, as a crash would
        assert processes_of_group(pgid), "the session runs on without them"
        assert httpx.get(url, cookies=cookies_for(alice), timeout=10).status_code == 200
        worker = Worker("local", extra_env=web.env)  # its supervisor adopts the running session
        assert api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/").status_code in (200, 202)
        job = wait_for_status(job_id, ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"], timeout=60)
        assert job.status == "SUCCEEDED" and "stopped" in job.message, job.message
    finally:
        worker.stop()
    assert processes_of_group(pgid) == [], "nothing of the session is left once it was stopped"
    assert httpx.get(url, cookies=cookies_for(alice), timeout=10).status_code != 200

"""An interactive routine on the Docker backend listening on a Unix socket (unix:///tmp/service.sock).

The container has no network at all: the proxy reaches the socket through the job's own host folder,
mounted at the socket's folder.
"""

from __future__ import annotations

import os
import time

import docker
import httpx
import pytest

from jobs.models import InteractiveSession, Job
from tests.conftest import wait_for_status
from tests.interactive.conftest import cookies_for, echo_routine, end_now, run, session_url
from tests.interactive.test_docker_websocket import ws_connect

pytestmark = pytest.mark.docker


def test_http_and_websocket_through_a_unix_socket(interactive_worker, web, api, project, alice, charlie):
    interactive_worker("docker")
    job_id = run(api, alice, echo_routine(project, alice, socket_="unix:///tmp/service.sock", timeout=120))
    url = session_url(job_id)
    session = InteractiveSession.objects.get(job_id=job_id)
    assert session.address.startswith("unix://") and session.address.endswith("/service.sock")
    container = docker.from_env().containers.get(f"acc-job-{job_id}")
    assert container.attrs["HostConfig"]["NetworkMode"] == "none", "a Unix socket needs no network"

    page = httpx.get(url, cookies=cookies_for(alice), timeout=10)
    assert page.status_code == 200 and "served by the echo server" in page.text
    assert httpx.get(url, cookies=cookies_for(charlie), timeout=10).status_code == 404
    with ws_connect(web, url + "ws", alice) as ws:
        ws.send("through the socket")
        assert ws.recv(timeout=10) == "through the socket"

    end_now(job_id)  # rather than a short timeout, which a loaded machine may spend before the server is up
    job = wait_for_status(job_id, {"SUCCEEDED", "TIMED_OUT"}, timeout=30)
    assert job.status == "SUCCEEDED", "the echo server exits cleanly on TERM"
    deadline = time.monotonic() + 5
    while (over := httpx.get(url, cookies=cookies_for(alice), timeout=10)).status_code != 410:
        assert time.monotonic() < deadline, over.status_code
        time.sleep(0.2)
    assert "session is over" in over.text
    socket_dir = session.address[len("unix://") :].rsplit("/", 1)[0]
    assert not os.path.exists(socket_dir), "the socket folder goes with the job"
    assert Job.objects.get(pk=job_id).backend_state["interactive"]["kind"] == "unix"

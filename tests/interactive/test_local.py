"""Interactive sessions on the `local` backend: the server is a subprocess on the worker's host."""

from __future__ import annotations

import os
import shutil
import uuid

import httpx

from tests.conftest import wait_for_status
from tests.interactive.conftest import cookies_for, echo_routine, free_port, log_of, run, session_url
from tests.interactive.test_docker_websocket import ws_connect
from workers.models import InteractiveSession


def test_a_tcp_session_on_the_subprocess_port(interactive_worker, web, api, project, alice, charlie):
    interactive_worker("local")
    port = free_port()
    job_id = run(api, alice, echo_routine(project, alice, socket_=f"0.0.0.0:{port}", timeout=4))
    url = session_url(job_id)
    assert InteractiveSession.objects.get(job_id=job_id).address == f"tcp://127.0.0.1:{port}"
    page = httpx.get(url, cookies=cookies_for(alice), timeout=10)
    assert page.status_code == 200 and "served by the echo server" in page.text
    assert httpx.get(url, cookies=cookies_for(charlie), timeout=10).status_code == 404
    with ws_connect(web, url + "ws", alice) as ws:
        ws.send("local echo")
        assert ws.recv(timeout=10) == "local echo"
    job = wait_for_status(job_id, {"SUCCEEDED", "TIMED_OUT"}, timeout=30)
    assert job.status == "SUCCEEDED" and "echo server stopped" in log_of(job_id)


def test_a_unix_socket_is_the_hosts_own_path(interactive_worker, web, api, project, alice):
    interactive_worker("local")
    path = f"/tmp/acc-int-{uuid.uuid4().hex[:12]}/app.sock"  # on `local` the path is on the worker's host
    routine = echo_routine(project, alice, socket_=f"unix://{path}", timeout=60)
    routine_version = routine.latest_version
    routine_version.spec["command"] = f'mkdir -p {os.path.dirname(path)} && exec python3 -c "$ECHO_SERVER"'
    routine_version.save(update_fields=["spec"])
    job_id = run(api, alice, routine)
    url = session_url(job_id)
    assert InteractiveSession.objects.get(job_id=job_id).address == f"unix://{path}"
    assert httpx.get(url, cookies=cookies_for(alice), timeout=10).status_code == 200
    assert api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/").status_code == 202
    assert wait_for_status(job_id, {"SUCCEEDED", "FAILED"}, timeout=30).status == "SUCCEEDED"
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def test_the_demo_web_app_runs_as_make_run_serves_it(interactive_worker, web, api, alice):
    from django.core.management import call_command

    from routines.models import Membership, Project, Role, Routine

    interactive_worker("local")
    call_command("load_demo", verbosity=0)
    Membership.objects.create(project=Project.objects.get(slug="demo"), user=alice, role=Role.MEMBER)
    lab = Routine.objects.get(project__slug="demo", name="jupyterlab").latest_version.spec
    assert lab["conf"] == {"interactive_socket": "0.0.0.0:8888", "interactive_prefix": "keep"}
    assert "$ACC_INTERACTIVE_PREFIX" in lab["command"]

    job_id = run(api, alice, Routine.objects.get(project__slug="demo", name="web-app"))
    url = session_url(job_id)
    page = httpx.get(url, cookies=cookies_for(alice), timeout=10)
    assert page.status_code == 200 and f"Hello from job {job_id}" in page.text and url in page.text
    assert api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/").status_code == 202
    assert wait_for_status(job_id, {"SUCCEEDED", "FAILED"}, timeout=30).status == "SUCCEEDED"

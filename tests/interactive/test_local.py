"""Interactive sessions on the `local` backend: the server runs in a sandbox with a network of its own, and
the platform reaches it only through a Unix socket in a folder of the platform's for that session."""

from __future__ import annotations

import os
import socket
import stat

import httpx
import pytest
from django.conf import settings
from websockets.exceptions import InvalidStatus

from jobs.models import InteractiveSession, Job
from routines.models import Membership, Role
from tests.conftest import wait_for_status
from tests.interactive.conftest import (
    cookies_for,
    echo_routine,
    free_port,
    interactive_routine,
    log_of,
    run,
    session_url,
)
from tests.interactive.test_docker_websocket import ws_connect


def session_folder(job_id: int) -> str:
    return f"{settings.ACC_INTERACTIVE_SOCKET_DIR}/{settings.ACC_INSTANCE}-{job_id}"


def test_a_tcp_session_is_reached_through_its_own_socket_only(interactive_worker, web, api, project, alice, charlie):
    interactive_worker("local")
    port = free_port()
    # a long timeout, ended by a stop below: a loaded machine may take seconds to get here
    job_id = run(api, alice, echo_routine(project, alice, socket_=f"0.0.0.0:{port}", timeout=120))
    url = session_url(job_id)
    folder = session_folder(job_id)
    assert InteractiveSession.objects.get(job_id=job_id).address == f"unix://{folder}/s/server.sock"
    assert os.stat(folder).st_uid == os.getuid() and not stat.S_IMODE(os.stat(folder).st_mode) & 0o066
    assert stat.S_IMODE(os.stat(f"{folder}/s").st_mode) == 0o700, "the job's part: its user's alone"
    page = httpx.get(url, cookies=cookies_for(alice), timeout=10)
    assert page.status_code == 200 and "served by the echo server" in page.text
    assert httpx.get(url, cookies=cookies_for(charlie), timeout=10).status_code == 404
    with ws_connect(web, url + "ws", alice) as ws:
        ws.send("local echo")
        assert ws.recv(timeout=10) == "local echo"
    assert api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/").status_code == 202
    job = wait_for_status(job_id, {"SUCCEEDED", "TIMED_OUT"}, timeout=30)
    assert job.status == "SUCCEEDED" and "echo server stopped" in log_of(job_id)
    assert not os.path.exists(folder), "the session's folder goes with the job"


def test_a_unix_socket_lives_in_the_sessions_own_folder(interactive_worker, web, api, project, alice):
    interactive_worker("local")
    routine = echo_routine(project, alice, socket_="unix:///run/app/app.sock", timeout=60)
    job_id = run(api, alice, routine)
    url = session_url(job_id)
    assert InteractiveSession.objects.get(job_id=job_id).address == f"unix://{session_folder(job_id)}/s/app.sock"
    assert not os.path.exists("/run/app/app.sock"), "the path is the sandbox's, not the host's"
    assert httpx.get(url, cookies=cookies_for(alice), timeout=10).status_code == 200
    assert api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/").status_code == 202
    assert wait_for_status(job_id, {"SUCCEEDED", "FAILED"}, timeout=30).status == "SUCCEEDED"


def test_a_viewer_of_the_project_gets_no_session(interactive_worker, web, api, project, alice, bob, charlie):
    interactive_worker("local")
    Membership.objects.create(project=project, user=charlie, role=Role.VIEWER)
    job_id = run(api, alice, echo_routine(project, alice, timeout=60))
    url = session_url(job_id)
    assert httpx.get(url, cookies=cookies_for(bob), timeout=10).status_code == 200, "a member who may run it"
    refused = httpx.get(url, cookies=cookies_for(charlie), timeout=10)
    assert refused.status_code == 404 and "served by the echo server" not in refused.text
    with pytest.raises(InvalidStatus) as caught:
        with ws_connect(web, url + "ws", charlie):
            pass
    assert caught.value.response.status_code == 403, "refused before the upgrade, as for a stranger"
    assert api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/").status_code == 202
    wait_for_status(job_id, {"SUCCEEDED", "FAILED"}, timeout=30)


WHO_AM_I = (
    'mkdir -p www && echo "<h1>served for job $ACC_JOB_ID</h1>" > www/index.html && '
    "exec python3 -m http.server 8787 --bind 0.0.0.0 --directory www"
)


def test_two_sessions_on_the_same_port_each_serve_their_own_job(interactive_worker, web, api, project, alice):
    interactive_worker("local")
    routine = interactive_routine(project, alice, socket_="0.0.0.0:8787", command=WHO_AM_I, timeout=120)
    first, second = run(api, alice, routine), run(api, alice, routine)
    urls = {job_id: session_url(job_id) for job_id in (first, second)}
    for _ in range(3):  # both at once, again and again: neither ever answers for the other
        for job_id, url in urls.items():
            page = httpx.get(url, cookies=cookies_for(alice), timeout=10)
            assert page.status_code == 200 and f"served for job {job_id}<" in page.text, page.text
    for job_id in urls:
        assert "Address already in use" not in log_of(job_id)
        assert api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/").status_code == 202
    for job_id in urls:
        assert wait_for_status(job_id, {"SUCCEEDED", "FAILED"}, timeout=30).status == "SUCCEEDED"


def _listening_inodes() -> set[str]:
    """Inodes of the TCP sockets that listen in the host's own network (state 0A: LISTEN)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                found.add(fields[9])
    return found


def _socket_inodes_of_group(pgid: int) -> set[str]:
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    found.add(target[len("socket:[") : -1])
        except OSError:
            continue
    return found


def test_nothing_of_a_session_listens_on_a_host_port(interactive_worker, web, api, project, alice):
    interactive_worker("local")
    port = free_port()
    job_id = run(api, alice, echo_routine(project, alice, socket_=f"0.0.0.0:{port}", timeout=60))
    url = session_url(job_id)
    assert httpx.get(url, cookies=cookies_for(alice), timeout=10).status_code == 200
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    pgid = Job.objects.get(pk=job_id).backend_state["pid"]
    sockets_of_session = _socket_inodes_of_group(pgid)
    assert sockets_of_session, "the session's processes hold sockets (its server, its forwarder)"
    assert not sockets_of_session & _listening_inodes()
    assert api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/").status_code == 202
    wait_for_status(job_id, {"SUCCEEDED", "FAILED"}, timeout=30)


def test_the_demo_web_app_runs_as_make_run_serves_it(interactive_worker, web, api, alice):
    from django.core.management import call_command

    from routines.models import Membership, Project, Role, Routine

    interactive_worker("local")
    call_command("load_demo", verbosity=0)
    Membership.objects.create(project=Project.objects.get(slug="demo"), user=alice, role=Role.MEMBER)
    # JupyterLab needs its image: not offered on the local backend (tests/hosting/test_demo_backends.py)
    assert not Routine.objects.filter(project__slug="demo", name="jupyterlab").exists()

    job_id = run(api, alice, Routine.objects.get(project__slug="demo", name="web-app"))
    url = session_url(job_id)
    page = httpx.get(url, cookies=cookies_for(alice), timeout=10)
    assert page.status_code == 200 and f"Hello from job {job_id}" in page.text and url in page.text
    assert api(alice).post(f"/api/v1/jobs/{job_id}/session/stop/").status_code == 202
    assert wait_for_status(job_id, {"SUCCEEDED", "FAILED"}, timeout=30).status == "SUCCEEDED"

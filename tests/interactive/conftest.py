"""Interactive sessions end to end: a real worker runs the server, real daphne serves the proxy.

`web` is daphne in a subprocess on the test database (pytest-django's live
server has no websockets); `interactive_worker(backend)` starts a Celery
worker whose session URLs point at it. `session_url(job_id)` waits for the
URL line in the job's log, `cookies_for(user)` signs a user in.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.test import Client

from routines import services
from tests.conftest import ROOT, Worker, _test_db_url
from tests.interactive.servers import ECHO_SERVER
from workers.models import LogChunk

BUSYBOX = "acc-test/busybox:latest"
PYTHON = "acc-test/python:latest"
URL_LINE = re.compile(r"\[INFO\] Interactive session available at: (\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daphne:
    def __init__(self, **extra_env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = settings.DATA_DIR / f"daphne-int-{os.getpid()}-{time.time_ns()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        env.update(DATABASE_URL=_test_db_url(), ACC_DATA_DIR=str(settings.DATA_DIR), PYTHONUNBUFFERED="1")
        env.update(ACC_INTERACTIVE_BASE_URL=self.url, **extra_env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "accelerator.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne not ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker):
    """One daphne per test module (starting one costs seconds); each test still gets a clean database."""
    server = Daphne()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def docker_worker(django_db_setup, web):
    worker = Worker("docker", extra_env={"ACC_INTERACTIVE_BASE_URL": web.url})
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def local_worker(django_db_setup, web):
    worker = Worker("local", extra_env={"ACC_INTERACTIVE_BASE_URL": web.url})
    yield worker
    worker.stop()


@pytest.fixture
def interactive_worker(request, transactional_db, settings, web):
    """interactive_worker(backend) -> the module's worker on `backend`; dispatch checks that backend too.

    Sessions still live at the end of a test are cancelled before its data goes, so the shared worker
    never runs a job whose rows were deleted under it.
    """

    def start(backend: str = "docker") -> Worker:
        settings.ACC_BACKEND = backend
        settings.ACC_INTERACTIVE_BASE_URL = web.url  # as the worker's
        return request.getfixturevalue(f"{backend}_worker")

    yield start
    from workers.models import Job
    from workers.services import cancel_job

    live = list(Job.objects.live().select_related("user", "project"))
    for job in live:
        cancel_job(job=job, user=job.user)
    deadline = time.monotonic() + 30
    while Job.objects.live().exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def cookies_for(user) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {name: morsel.value for name, morsel in client.cookies.items()}


def log_of(job_id: int) -> str:
    return "".join(LogChunk.objects.filter(job_id=job_id).order_by("seq").values_list("text", flat=True))


def session_url(job_id: int, timeout: float = 60) -> str:
    """The URL the platform wrote to the job's log once its server accepted connections."""
    from workers.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = URL_LINE.search(log_of(job_id))
        if found:
            return found.group(1)
        if Job.objects.get(pk=job_id).is_final:
            break
        time.sleep(0.1)
    raise AssertionError(f"no session URL in the log of job {job_id}:\n{log_of(job_id)}")


def interactive_routine(project, user, *, socket_: str, command: str, image: str = PYTHON, name="session", **node):
    conf = {"interactive_socket": socket_, **node.pop("conf", {})}
    task = {"name": name, "job_kwargs": {"docker_image": image, "command": command, "conf": conf}, **node}
    return services.save_routine(project=project, user=user, task=task)


def echo_routine(project, user, *, socket_: str = "0.0.0.0:8787", **node):
    conf = {"ECHO_SERVER": ECHO_SERVER, **node.pop("conf", {})}
    return interactive_routine(
        project, user, socket_=socket_, command='exec python3 -c "$ECHO_SERVER"', conf=conf, **node
    )


def run(api, user, routine, **body) -> int:
    response = api(user).post(f"/api/v1/routines/{routine.pk}/run/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]

"""Interactive sessions end to end: a real worker runs the server, the real session proxy serves it.

`web` is the platform as `make run` serves it, in subprocesses on the test
database (pytest-django's live server has no websockets): `manage.py serve_web` at
`web.url`, the session proxy (`manage.py serve_proxy`) at `web.sessions`;
`interactive_worker(backend)` starts a Celery worker whose session URLs
point at it. `session_url(job_id)` waits for the
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

from jobs.models import LogChunk
from routines import services
from tests.conftest import ROOT, Worker, _test_db_url
from tests.interactive.servers import ECHO_SERVER

BUSYBOX = "acc-test/busybox:latest"
PYTHON = "acc-test/python:latest"
URL_LINE = re.compile(r"\[INFO\] Interactive session available at: (\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A platform process listening on a free port, in a subprocess on the test database."""

    name = "server"

    def __init__(self, port: int | None = None, **extra_env: str):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = settings.DATA_DIR / f"{self.name}-int-{os.getpid()}-{time.time_ns()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        env.update(DATABASE_URL=_test_db_url(), ACC_DATA_DIR=str(settings.DATA_DIR), PYTHONUNBUFFERED="1")
        env.update({"ACC_PUBLIC_URL": self.url, "ACC_INTERACTIVE_BASE_URL": self.url, **extra_env})
        self.proc = subprocess.Popen(
            self.argv(),
            cwd=ROOT,
            env=env,
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready:\n{self.log()}")

    def argv(self) -> list[str]:
        raise NotImplementedError

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


class WebServer(Served):
    """The platform's web server (it also mounts the proxy under /interactive/)."""

    name = "web"

    def argv(self) -> list[str]:
        return [sys.executable, "manage.py", "serve_web", "--host", "127.0.0.1", "--port", str(self.port)]


class SessionProxy(Served):
    """`manage.py serve_proxy`: the sessions' own server (uvicorn), as `make run` starts it."""

    name = "proxy"

    def argv(self) -> list[str]:
        return [sys.executable, "manage.py", "serve_proxy", "--port", str(self.port)]


class Platform:
    """`serve_web` for the platform on one port, the session proxy on another, as `make run` serves them:
    `url` is the platform, `sessions` the base of every session URL."""

    def __init__(self):
        web_port, proxy_port = free_port(), free_port()
        self.url, self.port = f"http://127.0.0.1:{web_port}", web_port
        self.sessions = f"http://127.0.0.1:{proxy_port}"
        self.env = {"ACC_PUBLIC_URL": self.url, "ACC_INTERACTIVE_BASE_URL": self.sessions}
        self.proxy = SessionProxy(proxy_port, **self.env)
        try:
            self.webserver = WebServer(web_port, **self.env)
        except Exception:
            self.proxy.stop()
            raise

    def stop(self) -> None:
        self.webserver.stop()
        self.proxy.stop()


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker):
    """One platform per test module (starting one costs seconds); each test still gets a clean database."""
    server = Platform()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def docker_worker(django_db_setup, web):
    worker = Worker("docker", extra_env=web.env)
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def kubernetes_worker(django_db_setup, web):
    worker = Worker("kubernetes", extra_env=web.env)
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def local_worker(django_db_setup, web):
    worker = Worker("local", extra_env=web.env)
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
        settings.ACC_INTERACTIVE_BASE_URL = web.sessions  # as the worker's
        settings.ACC_PLATFORM_URL = web.url
        return request.getfixturevalue(f"{backend}_worker")

    yield start
    from jobs.models import Job
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
    from jobs.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = URL_LINE.search(log_of(job_id))
        if found:
            return found.group(1)
        if Job.objects.get(pk=job_id).is_final:
            break
        time.sleep(0.1)
    raise AssertionError(f"no session URL in the log of job {job_id}:\n{log_of(job_id)}")


def end_now(job_id: int) -> None:
    """Move a ready session's deadline to now, as running out of time does: its worker reads the deadline on
    every turn. A short job timeout instead would race the server's start on a loaded machine."""
    from django.utils import timezone

    from jobs.models import InteractiveSession

    InteractiveSession.objects.filter(job_id=job_id).update(ends_at=timezone.now())


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

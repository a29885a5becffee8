"""Shared fixtures: the alice/bob/charlie cast, API clients, a real Celery worker.

Everything here talks to the real services `make test` starts (PostgreSQL,
Redis, the Docker engine). In CI a missing service is an error, not a skip.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from rest_framework.test import APIClient

from accounts.services import issue_token_pair
from routines.models import Membership, Project, Role

pytest_plugins = ["tests.docker_fixtures", "tests.kube_fixtures", "tests.s3_fixtures", "tests.xdist_isolation"]

ROOT = Path(__file__).resolve().parent.parent
ACCLI = str(Path(sys.executable).parent / "accli")


@pytest.fixture(autouse=True)
def fresh_throttles(settings):
    """Sign-in lockouts and token rate limits count in the shared cache (Redis): each test gets counters of its
    own (a key prefix of its own), so the many sign-ins of a test run never add up across tests."""
    caches = {name: dict(conf) for name, conf in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = f"{caches['default'].get('KEY_PREFIX', '')}:test-{time.time_ns()}"
    settings.CACHES = caches
    from axes.handlers.proxy import AxesProxyHandler

    AxesProxyHandler.get_implementation(force=True)  # django-axes keeps the cache it was made with


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.org", "alice-pass-123")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.org", "bob-pass-123")


@pytest.fixture
def charlie(django_user_model):
    return django_user_model.objects.create_user("charlie", "charlie@example.org", "charlie-pass-123")


@pytest.fixture
def project(alice, bob):
    """Project `demo`: alice owns it, bob is a member, charlie is a stranger."""
    p = Project.objects.create(slug="demo", name="Demo")
    Membership.objects.create(project=p, user=alice, role=Role.OWNER)
    Membership.objects.create(project=p, user=bob, role=Role.MEMBER)
    return p


@pytest.fixture
def api():
    """api(user) -> an APIClient that authenticates like accli (x-authorization); api(None) is anonymous."""

    def make(user=None):
        client = APIClient()
        if user is not None:
            token = issue_token_pair(user=user)["access_token"]
            client.credentials(HTTP_X_AUTHORIZATION=token)
        return client

    return make


def _test_db_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """A real Celery worker process on the test database and Redis, with the supervisor of its backend."""

    def __init__(self, backend: str, concurrency: int = 4, extra_env: dict | None = None):
        self.backend = backend
        if backend == "kubernetes":
            from tests.kube_fixtures import require_cluster

            require_cluster()
        env = dict(os.environ)
        env.update(
            DATABASE_URL=_test_db_url(),
            ACC_BACKEND=backend,
            ACC_DATA_DIR=str(settings.DATA_DIR),
            ACC_JOBS_DIR=str(settings.ACC_JOBS_DIR),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env or {})
        self.log_path = settings.DATA_DIR / f"worker-{backend}-{os.getpid()}-{time.time_ns()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "accelerator",
                "worker",
                "-Q",
                "jobs,default",
                "-P",
                "threads",
                "-c",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "INFO",
                "-n",
                f"test-{backend}-{time.time_ns()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.env = env
        self.supervisor: subprocess.Popen | None = None
        self.start_supervisor()
        self._wait_ready()

    def start_supervisor(self) -> None:
        """(Re)start the backend's supervisor: it adopts every job of the backend that runs."""
        self.supervisor_log = self.log_path.with_suffix(f".supervisor-{time.time_ns()}.log")
        self.supervisor = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "supervise", "--backend", self.backend],
            cwd=ROOT,
            env=self.env,
            stdout=open(self.supervisor_log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while b"supervisor ready" not in self.supervisor_log.read_bytes():
            if self.supervisor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the supervisor did not start:\n{self.supervisor_log.read_text()[-4000:]}")
            time.sleep(0.05)

    def kill_supervisor(self) -> None:
        """SIGKILL the supervisor, as a crash would; the jobs it followed keep running."""
        if self.supervisor is not None and self.supervisor.poll() is None:
            os.killpg(self.supervisor.pid, signal.SIGKILL)
            self.supervisor.wait(10)

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log_path.read_text()[-4000:]}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready after {timeout}s:\n{self.log_path.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool) and its supervisor, as a crash would."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.kill_supervisor()

    def stop(self) -> None:
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.send_signal(signal.SIGTERM)
            try:
                self.supervisor.wait(15)
            except subprocess.TimeoutExpired:
                self.kill_supervisor()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(transactional_db):
    """start_worker(backend) -> a running Worker; stopped at the end of the test."""
    started: list[Worker] = []

    def start(backend: str = "local", **kwargs) -> Worker:
        worker = Worker(backend, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for_status(job_id: int, statuses, timeout: float = 60):
    """Poll the database until job `job_id` is in one of `statuses` (at most `timeout` s); return the job."""
    from jobs.models import Job

    if isinstance(statuses, str):
        statuses = {statuses}
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.status in statuses:
            return job
        if job.status in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break  # final: it will not become what is wanted; say why at once
        time.sleep(0.1)
    said = f" ({job.error_code}: {job.message})" if job is not None and job.message else ""
    raise AssertionError(f"job {job_id} is {job.status if job else '?'}, wanted {statuses}{said}")


def web_code(base_url: str, username: str, password: str) -> str:
    """Sign in through the real login form and read the code off /acli-auth-code."""
    s = requests.Session()
    s.get(f"{base_url}/accounts/login/")
    r = s.post(
        f"{base_url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": s.cookies["csrftoken"], "next": "/"},
    )
    assert r.status_code == 200 and "Sign out" in r.text
    page = s.get(f"{base_url}/acli-auth-code")
    return re.search(r'id="acli-code">([^<]+)<', page.text).group(1).strip()


@pytest.fixture
def accli_home(tmp_path, live_server, alice, project):
    home = tmp_path / "home"
    home.mkdir()
    code = web_code(live_server.url, "alice", "alice-pass-123")
    login = subprocess.run(
        [ACCLI, "login", "-s", live_server.url, "-c", live_server.url],
        input=code + "\n",
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert login.returncode == 0, login.stdout + login.stderr
    assert "Successfully logged in" in login.stdout
    return home

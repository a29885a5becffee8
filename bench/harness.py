"""The processes and clients the spine benchmark drives: its own database, the web server, Celery workers and
the supervisor of their backend, HTTP.

Everything is local (127.0.0.1 and the Docker engine's unix socket), every
wait is bounded, and every process started here is stopped by its own pid.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BENCH_DB = "accelerator_bench"
PG = "postgres://postgres@127.0.0.1:5432"
DB_URL = f"{PG}/{BENCH_DB}"
REDIS_URL = "redis://127.0.0.1:6379/8"
DOCKER_HOST = os.environ.get("DOCKER_HOST") or "unix:///run/acc-docker.sock"
DATA_DIR = ROOT / "var" / "bench"
IMAGE = "acc-test/busybox:latest"
# Job ids start here: the docker backend names containers acc-job-<id> on a shared engine, so the
# bench's ids must not collide with those of a test database using the same engine.
JOB_ID_START = 1_000_000_000
WORKER_FLAGS = ["-Q", "jobs,default", "--without-gossip", "--without-mingle", "--without-heartbeat"]


# --- environment, database, redis ------------------------------------------------
def platform_env(**extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="accelerator.settings",
        DATABASE_URL=DB_URL,
        REDIS_URL=REDIS_URL,
        ACC_DATA_DIR=str(DATA_DIR),
        DOCKER_HOST=DOCKER_HOST,
        ACC_DOCKER_NETWORK="none",
        ACC_INSTANCE="bench",
        PYTHONUNBUFFERED="1",
    )
    env.pop("ACC_JOBS_DIR", None)
    env.pop("CELERY_BROKER_URL", None)
    env.update(extra)
    return env


def setup_django() -> None:
    """Point this process at the bench database and start Django (for setup and for reading timestamps)."""
    os.environ.update(platform_env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def pg_sessions() -> int:
    """Sessions ever opened on the bench database (pg_stat_database.sessions, PostgreSQL 14+)."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", [BENCH_DB]).fetchone()
    return int(row[0]) if row and row[0] is not None else -1


def reset_data_dir() -> None:
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir(parents=True)


def flush_redis() -> None:
    """The bench's Redis db only: queued messages of an aborted run must not reach a new database."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def migrate_and_seed() -> dict:
    """Migrate, then create user, project `bench`, an access token and the routine the jobs run."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from accounts.services import issue_token_pair
    from routines import services

    call_command("migrate", "--noinput", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SELECT setval(pg_get_serial_sequence('workers_job', 'id'), %s, false)", [JOB_ID_START])
    user = get_user_model().objects.create_user("bench", "bench@example.org", "bench-password-123")
    project = services.create_project(user=user, slug="bench", name="Bench")
    routine = services.save_routine(project=project, user=user, task=trivial_task(), description="`true` in busybox")
    return {"token": issue_token_pair(user=user)["access_token"], "routine_id": routine.pk, "project": project.slug}


def trivial_task() -> dict:
    """The accli task node of a trivial job: `true` in busybox (the local backend runs it on the host)."""
    return {"name": "bench-true", "job_kwargs": {"docker_image": IMAGE, "command": "true"}}


def fresh_task(task: dict) -> dict:
    """A copy of a task node (or of every node of a native DAG) with a unique secret: a job not built before.

    A secret (part of the identity, not of the routine version) rather than a conf value, so that every
    dispatch still runs the same routine version, as a user re-running a routine on new data would.
    """
    nonce = uuid.uuid4().hex
    task = copy.deepcopy(task)
    for node in task.get("nodes") or [task]:
        node["job_secrets"] = {**(node.get("job_secrets") or {}), "BENCH_NONCE": nonce}
    return task


# --- processes ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process in its own session, logging to a file; stopped by its own pid/process group."""

    def __init__(self, name: str, cmd: list[str], env: dict):
        self.name = name
        self.log_path = DATA_DIR / "logs" / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_start = self.log_path.stat().st_size  # a name used again appends: readiness is read after this
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]

    def logged(self, marker: bytes) -> bool:
        """Whether this run of the process (not an earlier one under the same name) has logged `marker`."""
        with open(self.log_path, "rb") as fh:
            fh.seek(self._log_start)
            return marker in fh.read()

    def wait_logged(self, marker: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.logged(marker):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL its process group at once (a crash, as the recovery scenario needs); then reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        self._log.close()

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        self._log.close()


class WebServer(Proc):
    """The platform's web server as it ships: uvicorn through `manage.py serve_web` (what `make run` starts)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            "web",
            [PY, "manage.py", "serve_web", "--host", "127.0.0.1", "--port", str(self.port)],
            platform_env(),
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                requests.get(f"{self.url}/api/v1/projects/", timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"the web server not answering after {timeout}s:\n{self.tail()}")


class Worker(Proc):
    """`celery worker` with the platform's queue and flags; `pool`/`concurrency` as the scenario says."""

    def __init__(self, name: str, backend: str, pool: str, concurrency: int):
        self.backend = backend
        cmd = [
            PY,
            "-m",
            "celery",
            "-A",
            "accelerator",
            "worker",
            *WORKER_FLAGS,
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-l",
            "INFO",
            "-n",
            f"bench-{name}@%h",
        ]
        super().__init__(f"worker-{name}", cmd, platform_env(ACC_BACKEND=backend))

    def wait_ready(self, timeout: float = 40) -> None:
        self.wait_logged(b"ready.", timeout)


class Supervisor(Proc):
    """`manage.py supervise --backend <backend>`: follows the backend's running jobs and sends their finish task.

    Without it a started job stays RUNNING; it runs beside the workers, with their environment.
    """

    def __init__(self, name: str, backend: str):
        self.backend = backend
        super().__init__(
            f"supervisor-{name}",
            [PY, "manage.py", "supervise", "--backend", backend],
            platform_env(ACC_BACKEND=backend),
        )

    def wait_ready(self, timeout: float = 40) -> None:
        self.wait_logged(b"supervisor ready", timeout)


class Beat(Proc):
    """`celery beat`: sends the reconciler every ACC_RECONCILE_EVERY s (a worker runs it), as `make run` deploys."""

    def __init__(self, name: str):
        schedule = DATA_DIR / f"beat-{name}-schedule"
        super().__init__(
            f"beat-{name}",
            [PY, "-m", "celery", "-A", "accelerator", "beat", "-l", "INFO", "-s", str(schedule)],
            platform_env(),
        )

    def wait_ready(self, timeout: float = 40) -> None:
        self.wait_logged(b"beat: Starting", timeout)


def start_workers(layout: dict, backend: str) -> list[Proc]:
    """layout: {"processes": n, "pool": "prefork"|"threads", "concurrency": c}.

    Returns the workers and, last, the backend's supervisor (one per backend, as `make run` deploys): `stop_all`
    stops them together, and a CpuMeter over the list counts the supervisor with the workers.
    """
    procs: list[Proc] = []
    try:
        procs += [
            Worker(f"{backend}-{layout['key']}-{i}", backend, layout["pool"], layout["concurrency"])
            for i in range(layout["processes"])
        ]
        procs.append(Supervisor(f"{backend}-{layout['key']}", backend))
        for p in procs:
            p.wait_ready()
    except BaseException:
        stop_all(procs)
        raise
    return procs


def stop_all(procs) -> None:
    for p in procs:
        p.stop()


# --- HTTP client -----------------------------------------------------------------------
class Api:
    """The REST API as accli uses it; one requests.Session per thread."""

    def __init__(self, base: str, token: str, project: str):
        self.base, self.token, self.project = base, token, project
        self._local = threading.local()
        self.get_seconds: list[float] = []  # duration of every GET /jobs/<id>/ (wait_final polls)

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
            s.headers["x-authorization"] = self.token
        return s

    def dispatch(self, task: dict, *, fresh: bool = True) -> int:
        """Dispatch `task`; `fresh` adds a unique secret so the build-system cache never answers it."""
        if fresh:
            task = fresh_task(task)
        r = self.session.post(f"{self.base}/api/v1/aterm-cli/{self.project}/jobs/dispatch/", json=task, timeout=30)
        r.raise_for_status()
        return r.json()["job_id"]

    def run_routine(self, routine_id: int) -> int:
        body = {"secrets": {"BENCH_NONCE": uuid.uuid4().hex}}  # a new job each time, never a cache hit
        r = self.session.post(f"{self.base}/api/v1/routines/{routine_id}/run/", json=body, timeout=30)
        r.raise_for_status()
        return r.json()["id"]

    def job(self, job_id: int) -> dict:
        t0 = time.perf_counter()
        r = self.session.get(f"{self.base}/api/v1/jobs/{job_id}/", timeout=30)
        self.get_seconds.append(time.perf_counter() - t0)
        r.raise_for_status()
        return r.json()

    def wait_final(self, job_id: int, *, timeout: float, interval: float = 0.01) -> tuple[str, float]:
        """Poll GET /jobs/<id>/ until the job is final: (status, time.time() of the answer that said so)."""
        final = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}
        deadline = time.monotonic() + timeout
        status = "?"
        while time.monotonic() < deadline:
            status = self.job(job_id)["status"]
            if status in final:
                return status, time.time()
            time.sleep(interval)
        return status, float("nan")


# What the docker backend asks of the engine for a default job (backends/manifests.container_kwargs):
# network none, an init, 512 MiB without swap, 1 core, the pids limit, no-new-privileges, the workflow volume.
PLATFORM_RUN_FLAGS = [
    "--network",
    "none",
    "--init",
    "--memory",
    "512m",
    "--memory-swap",
    "512m",
    "--cpus",
    "1",
    "--pids-limit",
    "1024",
    "--security-opt",
    "no-new-privileges",
    "--mount",
    "type=volume,source=acc-bench-raw-pipe,target=/mnt/pipe",
]


def raw_docker_run(flags: list[str] | None = None) -> float:
    """Seconds of `docker run --rm [flags] acc-test/busybox:latest true` on the same engine."""
    t0 = time.perf_counter()
    subprocess.run(
        ["docker", "-H", DOCKER_HOST, "run", "--rm", *(flags or []), IMAGE, "true"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    return time.perf_counter() - t0


def remove_raw_volume() -> None:
    subprocess.run(
        ["docker", "-H", DOCKER_HOST, "volume", "rm", "-f", "acc-bench-raw-pipe"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
    )


# --- CPU accounting ------------------------------------------------------------------------
_CLK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user+system, with reaped children) of every live process in process group `pgid`."""
    total = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            f = _stat_fields(pid)
            if f and int(f[2]) == pgid:
                total += sum(int(x) for x in f[11:15])
    return total / _CLK


def postgres_cpu() -> float:
    """CPU seconds of PostgreSQL: its live processes plus the backends it has reaped (cutime of the postmaster).

    Counts every database on the server, so other tenants' queries are included.
    """
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                head, _, rest = fh.read().rpartition(")")
        except OSError:
            continue
        if head.split("(", 1)[-1] == "postgres":
            total += sum(int(x) for x in rest.split()[11:15])
    return total / _CLK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:9]]
    idle = v[3] + v[4]
    return (sum(v) - idle) / _CLK, sum(v) / _CLK


class CpuMeter:
    """CPU used by the web server, the workers, PostgreSQL, this client and the whole machine, per job."""

    def __init__(self, web: Proc, workers: list[Proc]):
        self.web, self.workers = web, workers
        self.start = self._snap()

    def _snap(self) -> dict:
        return {
            "web": group_cpu_seconds(self.web.proc.pid),
            "workers": sum(group_cpu_seconds(w.proc.pid) for w in self.workers),
            "postgres": postgres_cpu(),
            "client": sum(os.times()[:2]),
            "machine": machine_cpu(),
            "pg_sessions": pg_sessions(),
            "wall": time.monotonic(),
        }

    def per_job(self, jobs: int) -> dict:
        end, start = self._snap(), self.start
        busy = end["machine"][0] - start["machine"][0]
        total = end["machine"][1] - start["machine"][1]
        per = {k: round((end[k] - start[k]) * 1000 / jobs, 1) for k in ("web", "workers", "client", "postgres")}
        per["machine_all_processes"] = round(busy * 1000 / jobs, 1)
        per["rest_engine_kernel_redis_others"] = round(
            per["machine_all_processes"] - sum(per[k] for k in ("web", "workers", "client", "postgres")), 1
        )
        return {
            "cpu_ms_per_job": per,
            "new_postgres_sessions_per_job": round((end["pg_sessions"] - start["pg_sessions"]) / jobs, 2),
            "machine_busy_pct": round(100 * busy / total, 1) if total else None,
            "wall_s": round(end["wall"] - start["wall"], 2),
        }


# --- statistics ---------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float | None:
    """Percentile by linear interpolation (q in 0..100); None without values."""
    vals = sorted(v for v in values if v == v)
    if not vals:
        return None
    if len(vals) == 1:
        return vals[0]
    k = (len(vals) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (k - lo)


def summary(values: list[float], scale: float = 1000.0) -> dict:
    """median/p95/min/max/mean of `values` (seconds), scaled (ms by default), rounded."""
    vals = [v * scale for v in values if v == v]
    if not vals:
        return {"n": 0}
    return {
        "n": len(vals),
        "median": round(statistics.median(vals), 1),
        "p95": round(pct(vals, 95), 1),
        "min": round(min(vals), 1),
        "max": round(max(vals), 1),
        "mean": round(statistics.fmean(vals), 1),
    }

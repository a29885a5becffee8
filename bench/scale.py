"""Scale benchmark: many running jobs on one worker process and the supervisor; recovery, fairness, quotas.

Scenarios (issue 14, "What it must show" 1-4), all through the HTTP API like accli, on the platform's
processes started here (uvicorn `serve_web`, ONE Celery worker `-P threads -c 4`, `manage.py supervise`):

- scale-<backend>: N jobs (`echo start; sleep 60; echo end`) dispatched at once from client threads; seconds
  from the first dispatch call until all N are RUNNING at the same time, all SUCCEEDED with both log lines,
  dispatch -> RUNNING (running_at - created_at), peak PostgreSQL connections of the platform's processes and
  the peak RSS / threads of each (sampled every 0.5 s);
- recovery-<backend>: N jobs (`echo start; sleep 40; echo end`); once they run, `kill -9` the worker's and the
  supervisor's process groups, start them again; every job must end SUCCEEDED, with `start` and `end` exactly
  once in its log, one RUNNING event, and nothing of it left on the backend;
- fairness: project A dispatches N jobs (`sleep 5`, local), then project B one; seconds until B's job RUNNING;
- quota: project limit of 4 cores, 20 one-core jobs (`sleep 2`, local); sampled every 0.2 s: jobs in a phase
  that holds resources (never more than 4), and the `wait_reason` of every job waiting in the queue.

Own database (accelerator_bench_scale), Redis db 1, data dir var/bench-scale, job ids from 1 700 000 000;
ACC_INSTANCE=bench, so it must not run at the same time as bench/run.py (scripts/bench.sh runs them one
after the other). Each platform process connects with its own PostgreSQL application_name (acc-web,
acc-worker, acc-supervisor), which is how its connections are told apart in pg_stat_activity; this client's
are acc-bench-client and are not counted. RSS and threads of a process are summed over its process group:
the worker's includes its pool children, never the jobs (local jobs run in sessions of their own).

Every wait is bounded; every process started here is stopped by its own pid (process group); the bench's
containers (label acc.instance=bench) are removed at the start and at the end. Writes bench/results/scale.json
and scale.md. `--small` runs every scenario with small sizes (a quick check, ~5 min).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402

h.BENCH_DB = os.environ.get("ACC_BENCH_SCALE_DB", "accelerator_bench_scale")
h.DB_URL = f"{h.PG}/{h.BENCH_DB}"
h.REDIS_URL = os.environ.get("ACC_BENCH_SCALE_REDIS_URL", "redis://127.0.0.1:6379/1")
h.DATA_DIR = h.ROOT / "var" / "bench-scale"
h.JOB_ID_START = 1_700_000_000  # docker names containers acc-job-<id> on an engine others share
INSTANCE = "bench"
CLIENT_APP = "acc-bench-client"
_ROLE = {"app": CLIENT_APP}  # the application_name the next process started here connects with
_platform_env = h.platform_env


def platform_env(**extra: str) -> dict:
    return _platform_env(
        **{"DATABASE_URL": f"{h.DB_URL}?application_name={_ROLE['app']}", "ACC_INSTANCE": INSTANCE, **extra}
    )


h.platform_env = platform_env

RESULTS = h.ROOT / "bench" / "results"
LAYOUT = {"key": "scale", "processes": 1, "pool": "threads", "concurrency": 4, "describe": "1 worker, -P threads -c 4"}
FINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "SKIPPED"}
HOLDING = ("BUILDING", "MAPPING_INPUTS", "RUNNING", "MAPPING_OUTPUTS")  # a job in a phase that holds resources
TARGETS = {"all_running_s": 60.0, "pg_connections": 20, "supervisor_rss_mb": 300.0, "fair_start_s": 5.0}
FULL = {"scale_jobs": 200, "scale_sleep": 60, "recovery_jobs": 200, "recovery_sleep": 40, "fair_jobs": 300}
FULL.update({"fair_sleep": 5, "quota_jobs": 20, "quota_sleep": 2, "quota_cores": 4})
SMALL = {"scale_jobs": 20, "scale_sleep": 15, "recovery_jobs": 20, "recovery_sleep": 20, "fair_jobs": 30}
SMALL.update({"fair_sleep": 5, "quota_jobs": 8, "quota_sleep": 2, "quota_cores": 4})
SCENARIOS = ("scale-docker", "scale-local", "recovery-local", "recovery-docker", "fairness", "quota")
CLIENTS = 16  # client threads dispatching


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "-H", h.DOCKER_HOST, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def bench_containers() -> list[str]:
    out = docker("ps", "-aq", "--filter", f"label=acc.instance={INSTANCE}")
    return out.stdout.split()


def remove_bench_containers() -> int:
    ids = bench_containers()
    for i in range(0, len(ids), 50):
        docker("rm", "-f", *ids[i : i + 50], timeout=300)
    return len(ids)


# --- processes ---------------------------------------------------------------------------------------------
def labelled(app: str, make):
    """Start a platform process whose database connections carry application_name `app`."""
    _ROLE["app"] = app
    try:
        return make()
    finally:
        _ROLE["app"] = CLIENT_APP


class Platform:
    """The worker and the supervisor of one backend (the web server is shared by all scenarios)."""

    def __init__(self, backend: str, tag: str):
        self.backend, self.tag, self.starts = backend, tag, 0
        self.worker: h.Proc | None = None
        self.supervisor: h.Proc | None = None
        self.beat: h.Proc | None = None  # the reconciler's clock: not killed with the worker and the supervisor

    def start(self) -> None:
        self.starts += 1
        name = f"{self.backend}-{self.tag}-{self.starts}"
        try:
            if self.beat is None:
                self.beat = labelled("acc-beat", lambda: h.Beat(f"{self.backend}-{self.tag}"))
                self.beat.wait_ready()
            self.worker = labelled(
                "acc-worker", lambda: h.Worker(name, self.backend, LAYOUT["pool"], LAYOUT["concurrency"])
            )
            self.supervisor = labelled("acc-supervisor", lambda: h.Supervisor(name, self.backend))
            self.worker.wait_ready()
            self.supervisor.wait_ready()
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        for p in (self.supervisor, self.worker):
            if p is not None:
                p.kill()

    def stop(self) -> None:
        for p in (self.worker, self.supervisor, self.beat):
            if p is not None:
                p.stop()
        self.beat = None

    def procs(self) -> dict[str, h.Proc]:
        return {"worker": self.worker, "supervisor": self.supervisor, "beat": self.beat}


# --- sampling ------------------------------------------------------------------------------------------------
def _groups_memory(pgids: dict[str, int]) -> dict[str, tuple[int, int, int]]:
    """role -> (RSS kB, threads, processes) summed over the live processes of its process group."""
    by_group = {pgid: role for role, pgid in pgids.items()}
    out = {role: [0, 0, 0] for role in pgids}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                pgid = int(fh.read().rsplit(")", 1)[1].split()[2])
            role = by_group.get(pgid)
            if role is None:
                continue
            rss = threads = 0
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads = int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
        acc = out[role]
        acc[0] += rss
        acc[1] += threads
        acc[2] += 1
    return {role: tuple(v) for role, v in out.items()}


class Sampler(threading.Thread):
    """Every `every` s: the platform's PostgreSQL connections (by application_name) and each process's RSS."""

    def __init__(self, roles, every: float = 0.5):
        super().__init__(daemon=True)
        self.roles = roles  # callable -> {role: Proc}; re-read each time (the recovery restarts processes)
        self.every = every
        self.halt = threading.Event()
        self.samples = 0
        self.peak_pg_total = 0
        self.peak_pg: dict[str, int] = {}
        self.peak_rss_kb: dict[str, int] = {}
        self.peak_threads: dict[str, int] = {}
        self.peak_processes: dict[str, int] = {}
        self.foreign: dict[int, str] = {}  # pid -> command of a process not started here using the bench's Redis db
        self.error = ""

    def run(self) -> None:
        import psycopg

        try:
            conn = psycopg.connect(f"{h.PG}/postgres", autocommit=True, application_name=CLIENT_APP)
        except Exception as exc:  # the figures say the sampler did not run
            self.error = repr(exc)
            return
        try:
            while not self.halt.is_set():
                t = time.monotonic()
                rows = conn.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND backend_type = 'client backend' GROUP BY application_name",
                    [h.BENCH_DB],
                ).fetchall()
                counts = {app: n for app, n in rows if app.startswith("acc-") and app != CLIENT_APP}  # not psql
                self.peak_pg_total = max(self.peak_pg_total, sum(counts.values()))
                for app, n in counts.items():
                    self.peak_pg[app] = max(self.peak_pg.get(app, 0), n)
                live = {role: p for role, p in self.roles().items() if p is not None and p.proc.poll() is None}
                pgids = {role: p.proc.pid for role, p in live.items()}
                for role, (rss, threads, procs) in _groups_memory(pgids).items():
                    self.peak_rss_kb[role] = max(self.peak_rss_kb.get(role, 0), rss)
                    self.peak_threads[role] = max(self.peak_threads.get(role, 0), threads)
                    self.peak_processes[role] = max(self.peak_processes.get(role, 0), procs)
                if self.samples % 4 == 0:
                    try:
                        self._foreign_redis_clients(live)
                    except Exception as exc:  # a process gone meanwhile, ss missing: the sampling goes on
                        self.error = f"foreign client check: {exc!r}"
                self.samples += 1
                self.halt.wait(max(0.0, self.every - (time.monotonic() - t)))
        except Exception as exc:
            self.error = repr(exc)
        finally:
            conn.close()

    def _foreign_redis_clients(self, live: dict) -> None:
        """A process of someone else on the bench's Redis db (a worker of a test run) could take its start tasks."""
        import redis

        db = int(h.REDIS_URL.rsplit("/", 1)[1] or 0)
        client = redis.Redis.from_url(h.REDIS_URL)
        try:
            ports = {int(c["addr"].rsplit(":", 1)[1]) for c in client.client_list() if int(c.get("db", -1)) == db}
        finally:
            client.close()
        out = subprocess.run(["ss", "-tnpH", "( dport = :6379 )"], capture_output=True, text=True, timeout=10)
        ours = {os.getpid()} | {p.proc.pid for p in live.values()}
        for line in out.stdout.splitlines():
            cols = line.split()
            if len(cols) < 6 or "pid=" not in cols[-1]:
                continue
            port = int(cols[3].rsplit(":", 1)[1])
            pid = int(cols[-1].split("pid=", 1)[1].split(",", 1)[0])
            if port in ports and pid not in ours and os.getpgid(pid) not in ours and pid not in self.foreign:
                try:
                    self.foreign[pid] = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:200]
                except OSError:
                    self.foreign[pid] = "?"

    def stop(self) -> dict:
        self.halt.set()
        self.join(10)
        return {
            "samples": self.samples,
            "every_s": self.every,
            "peak_pg_connections_total": self.peak_pg_total,
            "peak_pg_connections": self.peak_pg,
            "peak_rss_mb": {k: round(v / 1024, 1) for k, v in self.peak_rss_kb.items()},
            "peak_threads": self.peak_threads,
            "peak_processes": self.peak_processes,
            "foreign_redis_clients": self.foreign,
            **({"error": self.error} if self.error else {}),
        }


# --- jobs ------------------------------------------------------------------------------------------------------
def task(name: str, command: str, **resources) -> dict:
    return {"name": name, "timeout": 1800, **resources, "job_kwargs": {"docker_image": h.IMAGE, "command": command}}


def dispatch_many(api: h.Api, node: dict, n: int) -> tuple[list[int], list[str], float, float]:
    """n dispatches of `node` (each with its own secret nonce: distinct jobs, never joined by the cache)."""
    t0 = time.time()
    ids, errors = [], []
    with ThreadPoolExecutor(CLIENTS) as pool:
        for f in [pool.submit(api.dispatch, node) for _ in range(n)]:
            try:
                ids.append(f.result())
            except Exception as exc:
                errors.append(repr(exc)[:300])
    return ids, errors, t0, time.time()


def count_status(ids: list[int]) -> dict[str, int]:
    from django.db.models import Count

    from jobs.models import Job

    rows = Job.objects.filter(pk__in=ids).order_by().values("status").annotate(n=Count("pk"))
    return {r["status"]: r["n"] for r in rows}


def wait_until(check, timeout: float, every: float = 0.25):
    """Call check() until it returns something true or `timeout` passes; returns (value, seconds waited)."""
    t0 = time.monotonic()
    value = None
    while time.monotonic() - t0 < timeout:
        value = check()
        if value:
            break
        time.sleep(every)
    return value, time.monotonic() - t0


def wait_final(ids: list[int], timeout: float) -> tuple[dict, float]:
    counts: dict = {}

    def done():
        nonlocal counts
        counts = count_status(ids)
        return sum(n for s, n in counts.items() if s in FINAL) == len(ids)

    _, waited = wait_until(done, timeout, every=0.5)
    return counts, waited


def rows_of(ids: list[int]) -> dict[int, dict]:
    from jobs.models import Job

    fields = ("pk", "status", "created_at", "running_at", "mapping_outputs_at", "finished_at", "backend_state")
    return {r["pk"]: r for r in Job.objects.filter(pk__in=ids).values(*fields)}


def log_check(ids: list[int]) -> dict:
    """Every job's stored log must hold the line `start` and the line `end`, each exactly once."""
    from jobs.models import LogChunk

    text: dict[int, list[str]] = {i: [] for i in ids}
    for job_id, chunk in LogChunk.objects.filter(job_id__in=ids).order_by("job_id", "seq").values_list("job", "text"):
        text[job_id].append(chunk)
    bad = {}
    for job_id, chunks in text.items():
        lines = "".join(chunks).splitlines()
        starts, ends = lines.count("start"), lines.count("end")
        if starts != 1 or ends != 1:
            bad[job_id] = {"start": starts, "end": ends, "tail": "".join(chunks)[-200:]}
    return {"complete": len(ids) - len(bad), "incomplete": len(bad), "examples": dict(list(bad.items())[:5])}


def running_events(ids: list[int]) -> dict:
    from django.db.models import Count

    from jobs.models import JobEvent

    twice = (
        JobEvent.objects.filter(job_id__in=ids, status="RUNNING")
        .order_by()
        .values("job_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    twice = {r["job_id"]: r["n"] for r in twice}
    return {"jobs_with_two_running_events": len(twice), "examples": dict(list(twice.items())[:5])}


def secs(a, b) -> float | None:
    return (b - a).total_seconds() if a and b else None


def median_ms(values) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals) * 1000, 1) if vals else None


def local_leftovers(ids: list[int], rows: dict[int, dict]) -> dict:
    """Processes of the jobs still alive (by the pid/process group in backend_state) and state files left."""
    pids = {r["backend_state"].get("pid") for r in rows.values() if isinstance(r["backend_state"], dict)} - {None}
    alive = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and (int(pid) in pids or int(fields[2]) in pids):
            alive.append(int(pid))
    jobs_dir = h.DATA_DIR / "jobs"
    state_files = [i for i in ids if (jobs_dir / str(i) / "state.json").exists()] if jobs_dir.is_dir() else []
    return {"pids_known": len(pids), "processes_alive": len(alive), "state_files_left": len(state_files)}


# --- scenarios -------------------------------------------------------------------------------------------------
def scale(api: h.Api, web: h.WebServer, backend: str, size: dict) -> dict:
    """All N jobs RUNNING together: how soon, and what the platform's processes hold meanwhile."""
    n, sleep = size["scale_jobs"], size["scale_sleep"]
    out: dict = {"backend": backend, "jobs": n, "command": f"echo start; sleep {sleep}; echo end", "workers": LAYOUT}
    out["load_before"] = load()
    plat = Platform(backend, "scale")
    sampler = Sampler(lambda: {"web": web, **plat.procs()})
    try:
        plat.start()
        sampler.start()
        node = task(f"scale-{backend}", out["command"])
        print(f"[scale] {backend}: dispatching {n} jobs", flush=True)
        ids, errors, t0, t_sent = dispatch_many(api, node, n)
        out.update(dispatched=len(ids), dispatch_errors=errors[:5], dispatch_s=round(t_sent - t0, 2))
        peak_running = 0

        def all_running():
            nonlocal peak_running
            running = count_status(ids).get("RUNNING", 0)
            peak_running = max(peak_running, running)
            return running == n

        ok, _ = wait_until(all_running, timeout=sleep + 120)
        out["all_running_seen_by_poll_s"] = round(time.time() - t0, 2) if ok else None
        out["peak_running_seen"] = peak_running
        counts, waited = wait_final(ids, timeout=sleep + 600)
        out["status"] = counts
        out["final_wait_s"] = round(waited, 1)
        rows = rows_of(ids)
        starts = [r["running_at"] for r in rows.values() if r["running_at"]]
        ends = [r["mapping_outputs_at"] or r["finished_at"] for r in rows.values()]
        if len(starts) == n and all(ends):
            last_start = max(starts)
            out["all_running_together"] = last_start < min(ends)
            out["all_running_s"] = round(last_start.timestamp() - t0, 2)  # from the first dispatch call
        out["dispatch_to_running_ms"] = {
            "median": median_ms(secs(r["created_at"], r["running_at"]) for r in rows.values()),
            "max": round(max((secs(r["created_at"], r["running_at"]) or 0) for r in rows.values()) * 1000, 1),
        }
        out["logs"] = log_check(ids)
        out["running_events"] = running_events(ids)
    finally:
        out["resources"] = sampler.stop() if sampler.is_alive() else {"error": "sampler did not run"}
        plat.stop()
        out["load_after"] = load()
    out["left_behind"] = leftovers(backend, ids)
    return out


def leftovers(backend: str, ids: list[int]) -> dict:
    if backend == "docker":
        found, _ = wait_until(lambda: not bench_containers(), timeout=30, every=1)
        return {"containers": len(bench_containers())}
    found, _ = wait_until(lambda: not local_leftovers(ids, rows_of(ids))["processes_alive"], timeout=30, every=1)
    return local_leftovers(ids, rows_of(ids))


def recovery(api: h.Api, web: h.WebServer, backend: str, size: dict, down_s: float = 5.0) -> dict:
    """kill -9 the worker and the supervisor while N jobs run; start them again; every job must end right."""
    n, sleep = size["recovery_jobs"], size["recovery_sleep"]
    out: dict = {"backend": backend, "jobs": n, "command": f"echo start; sleep {sleep}; echo end", "down_s": down_s}
    out["load_before"] = load()
    plat = Platform(backend, "recovery")
    sampler = Sampler(lambda: {"web": web, **plat.procs()})
    ids: list[int] = []
    try:
        plat.start()
        sampler.start()
        print(f"[scale] recovery {backend}: dispatching {n} jobs", flush=True)
        ids, errors, t0, t_sent = dispatch_many(api, task(f"recovery-{backend}", out["command"]), n)
        out.update(dispatched=len(ids), dispatch_errors=errors[:5], dispatch_s=round(t_sent - t0, 2))
        # kill once all run, or once the first jobs are half way through their sleep (some may still start)
        ok, _ = wait_until(lambda: count_status(ids).get("RUNNING", 0) == n, timeout=sleep / 2)
        out["at_kill"] = count_status(ids)
        out["killed_after_s"] = round(time.time() - t0, 2)
        print(f"[scale] recovery {backend}: kill -9 worker and supervisor at {out['at_kill']}", flush=True)
        plat.kill()
        time.sleep(down_s)
        out["at_restart"] = count_status(ids)
        t_restart = time.time()
        plat.start()
        counts, waited = wait_final(ids, timeout=sleep + 600)
        out["status"] = counts
        out["restart_to_all_final_s"] = round(time.time() - t_restart, 1)
        out["logs"] = log_check(ids)
        out["running_events"] = running_events(ids)
    finally:
        out["resources"] = sampler.stop() if sampler.is_alive() else {"error": "sampler did not run"}
        plat.stop()
        out["load_after"] = load()
    out["left_behind"] = leftovers(backend, ids)
    return out


def fairness(api_a: h.Api, api_b: h.Api, web: h.WebServer, size: dict) -> dict:
    """Project A's N queued jobs must not hold back project B's one."""
    n, sleep = size["fair_jobs"], size["fair_sleep"]
    out: dict = {"backend": "local", "jobs_a": n, "command": f"sleep {sleep}", "load_before": load()}
    plat = Platform("local", "fair")
    ids_a: list[int] = []
    try:
        plat.start()
        print(f"[scale] fairness: project A dispatches {n} jobs, then project B one", flush=True)
        ids_a, errors, t0, t_sent = dispatch_many(api_a, task("fair-a", f"sleep {sleep}"), n)
        out.update(dispatched_a=len(ids_a), dispatch_errors=errors[:5], dispatch_a_s=round(t_sent - t0, 2))
        out["a_at_b_dispatch"] = count_status(ids_a)
        t_b = time.time()
        job_b = api_b.dispatch(task("fair-b", f"sleep {sleep}"))
        from jobs.models import Job

        running_at, waited = wait_until(
            lambda: Job.objects.filter(pk=job_b).values_list("running_at", flat=True).first(), timeout=180, every=0.05
        )
        out["b_running_after_s"] = round(running_at.timestamp() - t_b, 2) if running_at else None
        out["a_at_b_running"] = count_status(ids_a)
        counts, _ = wait_final([*ids_a, job_b], timeout=n * sleep / 4 + 300)
        out["status"] = counts
    finally:
        plat.stop()
        out["load_after"] = load()
    out["left_behind"] = leftovers("local", ids_a)
    return out


def quota(api: h.Api, web: h.WebServer, size: dict, project_slug: str) -> dict:
    """A 4-core project quota and 20 one-core jobs: never more than 4 holding resources; waiting ones say why."""
    from jobs.models import Job, Quota
    from routines.models import Project

    n, sleep, cores = size["quota_jobs"], size["quota_sleep"], size["quota_cores"]
    Quota.objects.update_or_create(project=Project.objects.get(slug=project_slug), defaults={"max_cores": cores})
    out: dict = {"backend": "local", "jobs": n, "command": f"sleep {sleep}", "quota_max_cores": cores}
    out["load_before"] = load()
    plat = Platform("local", "quota")
    try:
        plat.start()
        print(f"[scale] quota: {n} one-core jobs in a project limited to {cores} cores", flush=True)
        ids, errors, t0, t_sent = dispatch_many(api, task("quota", f"sleep {sleep}", required_cores=1.0), n)
        out.update(dispatched=len(ids), dispatch_errors=errors[:5])
        max_holding, samples = 0, 0
        seen_waiting: set[int] = set()
        seen_reason: set[int] = set()
        other_reasons: dict[str, int] = {}
        api_checks: list[str] = []
        deadline = time.monotonic() + n * sleep + 300
        while time.monotonic() < deadline:
            t = time.monotonic()
            rows = list(Job.objects.filter(pk__in=ids).values_list("pk", "status", "admitted_at", "wait_reason"))
            samples += 1
            max_holding = max(max_holding, sum(1 for _, s, _, _ in rows if s in HOLDING))
            for pk, status, admitted, reason in rows:
                if status == "QUEUED" and admitted is None:
                    seen_waiting.add(pk)
                    if reason.startswith("waiting for quota"):
                        seen_reason.add(pk)
                    else:
                        other_reasons[reason] = other_reasons.get(reason, 0) + 1
            waiting_now = [pk for pk, status, admitted, _ in rows if status == "QUEUED" and admitted is None]
            if waiting_now and samples % 5 == 0:  # about once a second: what the API says of a waiting job
                reason = api.job(waiting_now[-1]).get("wait_reason") or ""
                api_checks.append(reason)
            if all(s in FINAL for _, s, _, _ in rows) and len(rows) == len(ids):
                break
            time.sleep(max(0.0, 0.2 - (time.monotonic() - t)))
        out.update(
            samples=samples,
            every_s=0.2,
            max_holding_resources=max_holding,
            jobs_seen_waiting=len(seen_waiting),
            waiting_jobs_that_showed_quota_reason=len(seen_reason),
            waiting_jobs_never_showing_it=sorted(seen_waiting - seen_reason)[:10],
            samples_with_other_reason=other_reasons,
            status=count_status(ids),
            api_checks=len(api_checks),
            api_checks_saying_waiting_for_quota=sum(r.startswith("waiting for quota") for r in api_checks),
            api_wait_reason_example=next((r for r in api_checks if r), ""),
        )
    finally:
        plat.stop()
        out["load_after"] = load()
    return out


# --- report ----------------------------------------------------------------------------------------------------
def mark(value, target, cmp="<=") -> str:
    if value is None or target is None:
        return ""
    ok = value <= target if cmp == "<=" else value >= target
    return "PASS" if ok else "**FAIL**"


def markdown(res: dict) -> str:
    lines = [
        "# Scale benchmark",
        "",
        f"- date: {res['date']} (took {res.get('duration_s')} s); sizes: {res['sizes_name']}",
        f"- machine: {res['machine']}; load average at start {res['load_start']}, at end {res.get('load_end')}",
        f"- processes: uvicorn `serve_web`, {LAYOUT['describe']}, `manage.py supervise --backend <backend>`",
        "",
    ]
    if res.get("error"):
        lines += [f"**ERROR**: `{res['error'].strip().splitlines()[-1]}`", ""]
    rows = ["| figure | value | target | result | load before -> after |", "|---|---|---|---|---|"]

    def add(name, value, unit, target=None, cmp="<=", sc=None):
        ld = f"{sc['load_before'][0]} -> {sc['load_after'][0]}" if sc and "load_after" in sc else ""
        shown = "n/a" if value is None else f"{value} {unit}".strip()
        tgt = f"{cmp} {target}" if target is not None else ""
        rows.append(f"| {name} | {shown} | {tgt} | {mark(value, target, cmp)} | {ld} |")

    for backend in ("docker", "local"):
        sc = res.get(f"scale-{backend}")
        if not sc:
            continue
        r = sc.get("resources", {})
        n = sc["jobs"]
        together = "" if sc.get("all_running_together") else " (never all at once)"
        add(f"{backend}: {n} jobs all RUNNING after{together}", sc.get("all_running_s"), "s", 60.0, sc=sc)
        add(f"{backend}: jobs SUCCEEDED", sc.get("status", {}).get("SUCCEEDED", 0), f"of {n}", n, ">=", sc)
        add(f"{backend}: logs with start and end once", sc.get("logs", {}).get("complete"), f"of {n}", n, ">=", sc)
        add(f"{backend}: dispatch -> RUNNING median", sc.get("dispatch_to_running_ms", {}).get("median"), "ms", sc=sc)
        add(f"{backend}: peak PostgreSQL connections", r.get("peak_pg_connections_total"), "", 20, sc=sc)
        for role in ("web", "worker", "supervisor"):
            target = 300.0 if role == "supervisor" else None
            add(f"{backend}: peak RSS {role}", r.get("peak_rss_mb", {}).get(role), "MB", target, sc=sc)
    for backend in ("local", "docker"):
        sc = res.get(f"recovery-{backend}")
        if not sc:
            continue
        n = sc["jobs"]
        add(f"recovery {backend}: jobs SUCCEEDED", sc.get("status", {}).get("SUCCEEDED", 0), f"of {n}", n, ">=", sc)
        add(f"recovery {backend}: logs with start and end once", sc.get("logs", {}).get("complete"), f"of {n}", n, ">=")
        two = sc.get("running_events", {}).get("jobs_with_two_running_events")
        add(f"recovery {backend}: jobs with two RUNNING events", two, "", 0, sc=sc)
        left = sc.get("left_behind", {})
        add(
            f"recovery {backend}: left behind",
            left.get("containers", left.get("processes_alive")),
            "containers" if backend == "docker" else "processes",
            0,
        )
    sc = res.get("fairness")
    if sc:
        add(f"fairness: B's job RUNNING after A's {sc['jobs_a']}", sc.get("b_running_after_s"), "s", 5.0, sc=sc)
    sc = res.get("quota")
    if sc:
        name = f"quota ({sc['quota_max_cores']} cores): most jobs holding resources at once"
        add(name, sc.get("max_holding_resources"), "", sc["quota_max_cores"], sc=sc)
        add(
            "quota: waiting jobs that showed 'waiting for quota'",
            sc.get("waiting_jobs_that_showed_quota_reason"),
            f"of {sc.get('jobs_seen_waiting')}",
            sc.get("jobs_seen_waiting"),
            ">=",
            sc,
        )
    lines += rows + [""]
    for key in SCENARIOS:
        sc = res.get(key)
        if sc:
            lines += [f"## {key}", "", "```json", json.dumps(sc, indent=1, default=str)[:6000], "```", ""]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------------------
def seed() -> dict:
    """The bench user and project (harness), projects scale-a and scale-q of the same user, and scale-b of another
    user (fairness is between projects; a user of their own is the usual case)."""
    from django.contrib.auth import get_user_model

    from accounts.services import issue_token_pair
    from routines import services

    seeded = h.migrate_and_seed()
    user = get_user_model().objects.get(username="bench")
    for slug in ("scale-a", "scale-q"):
        services.create_project(user=user, slug=slug, name=slug)
    other = get_user_model().objects.create_user("bench-b", "bench-b@example.org", "bench-password-123")
    services.create_project(user=other, slug="scale-b", name="scale-b")
    seeded["token_b"] = issue_token_pair(user=other)["access_token"]
    return seeded


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="small sizes for a quick check (default: the full run)")
    p.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--out", default="scale", help="results file stem in bench/results/")
    args = p.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    size = SMALL if args.small else FULL

    def on_term(*_):  # `kill` / timeout: unwind, so the finally blocks stop every process started here
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.time()
    res: dict = {
        "benchmark": "scale",
        "command": " ".join([".venv/bin/python bench/scale.py", *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB",
        "load_start": load(),
        "sizes_name": "small (--small)" if args.small else "full",
        "sizes": size,
        "scenarios": chosen,
        "targets": TARGETS,
        "database": h.BENCH_DB,
        "redis": h.REDIS_URL,
        "instance": INSTANCE,
    }
    web = None
    code = 0
    try:
        res["containers_removed_at_start"] = remove_bench_containers()
        h.reset_data_dir()
        h.flush_redis()
        h.recreate_database()
        h.setup_django()
        seeded = seed()
        web = labelled("acc-web", h.WebServer)
        web.wait_ready()
        api = h.Api(web.url, seeded["token"], seeded["project"])
        for key in chosen:
            print(f"[scale] {key} (load {load()})", flush=True)
            try:
                if key.startswith("scale-"):
                    res[key] = scale(api, web, key.split("-", 1)[1], size)
                elif key.startswith("recovery-"):
                    res[key] = recovery(api, web, key.split("-", 1)[1], size)
                elif key == "fairness":
                    api_a = h.Api(web.url, seeded["token"], "scale-a")
                    res[key] = fairness(api_a, h.Api(web.url, seeded["token_b"], "scale-b"), web, size)
                elif key == "quota":
                    api_q = h.Api(web.url, seeded["token"], "scale-q")
                    res[key] = quota(api_q, web, size, "scale-q")
            except Exception:
                res[key] = {**res.get(key, {}), "error": traceback.format_exc()[-3000:]}
                print(f"[scale] {key} ERROR\n{res[key]['error']}", file=sys.stderr, flush=True)
                code = 1
            finally:
                if key.endswith("docker"):
                    res[key]["containers_removed_after"] = remove_bench_containers()
    except BaseException as exc:
        res["error"] = traceback.format_exc()[-5000:]
        print(f"[scale] ERROR {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if web is not None:
            web.stop()
        try:
            h.flush_redis()
            remove_bench_containers()
        except Exception:
            pass
    res["load_end"] = load()
    res["duration_s"] = round(time.time() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    md = markdown(res)
    (RESULTS / f"{args.out}.md").write_text(md)
    print(md, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

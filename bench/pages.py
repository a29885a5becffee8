"""Job-list page benchmark: GET of the jobs list page with 10,000 jobs in the database.

Seeds 10,000 finished jobs for the bench project (bulk insert, no workers),
serves the platform with uvicorn (`manage.py serve_web`), signs in through the login form like a
browser and times the first page of `/projects/bench/jobs/` and two filtered
views. The query count of the page is read in-process with 100 and with
10,000 jobs: it must not grow with the number of jobs. Writes
bench/results/pages.json and pages.md. Uses its own database and Redis db.
"""

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402

h.BENCH_DB = os.environ.get("ACC_BENCH_PAGES_DB", "accelerator_bench_pages")
h.DB_URL = f"{h.PG}/{h.BENCH_DB}"
h.REDIS_URL = os.environ.get("ACC_BENCH_PAGES_REDIS_URL", "redis://127.0.0.1:6379/15")
h.DATA_DIR = h.ROOT / "var" / "bench-pages"

RESULTS = h.ROOT / "bench" / "results"
JOBS = 10_000
REQUESTS = 40
TARGET_MS = 150.0
PAGES = {
    "first page": "/projects/bench/jobs/",
    "filtered by status": "/projects/bench/jobs/?status=FAILED",
    "filtered by user and date": "/jobs/?user=bench&since=2020-01-01",
}


def seed_jobs(count: int) -> None:
    from django.utils import timezone

    from jobs.models import Job
    from routines.models import Project, Routine

    project = Project.objects.get(slug="bench")
    routine = Routine.objects.get(project=project)
    user = routine.created_by
    now = timezone.now()
    statuses = ["SUCCEEDED"] * 8 + ["FAILED", "CANCELLED"]
    rows = [
        Job(
            project=project,
            routine_version=routine.latest_version,
            user=user,
            name=routine.name,
            status=statuses[i % len(statuses)],
            status_changed_at=now,
            queued_at=now - dt.timedelta(seconds=count - i),
            finished_at=now - dt.timedelta(seconds=count - i - 0.5),
            exit_code=0,
        )
        for i in range(count)
    ]
    Job.objects.bulk_create(rows, batch_size=2000)


def queries_of(path: str) -> int:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.status_code
    return len(captured)


def prepare() -> dict:
    """In this process: migrate, seed, count queries at 100 and at 10,000 jobs."""
    h.setup_django()
    h.migrate_and_seed()
    seed_jobs(100)
    small = {name: queries_of(path) for name, path in PAGES.items()}
    seed_jobs(JOBS - 100)
    large = {name: queries_of(path) for name, path in PAGES.items()}
    return {"queries_100": small, "queries_10000": large}


def sign_in(base_url: str) -> requests.Session:
    s = requests.Session()
    s.get(f"{base_url}/accounts/login/", timeout=10)
    r = s.post(
        f"{base_url}/accounts/login/",
        data={
            "username": "bench",
            "password": "bench-password-123",
            "csrfmiddlewaretoken": s.cookies["csrftoken"],
            "next": "/",
        },
        timeout=10,
    )
    r.raise_for_status()
    if "sessionid" not in s.cookies:
        raise RuntimeError(f"login failed ({r.status_code})")
    return s


def time_pages(session: requests.Session, base_url: str) -> dict:
    found = {}
    for name, path in PAGES.items():
        session.get(base_url + path, timeout=30).raise_for_status()  # warm-up
        seconds = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            r = session.get(base_url + path, timeout=30)
            seconds.append(time.perf_counter() - t0)
            r.raise_for_status()
        found[name] = h.summary(seconds)
    return found


def markdown(res: dict) -> str:
    lines = [
        "# Job-list page benchmark",
        "",
        f"- date: {res['date']}; machine: {res['machine']}",
        f"- command: `{res['command']}`; {JOBS} jobs in the database, {REQUESTS} GETs per page after a warm-up,",
        "  signed in through the login form, uvicorn serving (`manage.py serve_web`, one process)",
        "",
        "| figure | value | target | result |",
        "|---|---|---|---|",
    ]
    for name, path in PAGES.items():
        t = res["timings_ms"][name]
        ok = t["median"] <= TARGET_MS
        lines.append(f"| `{path}` ({name}), median | {t['median']} ms | <= 150 ms | {'PASS' if ok else '**FAIL**'} |")
        lines.append(f"| `{path}` ({name}), p95 | {t['p95']} ms |  |  |")
        small, large = res["queries_100"][name], res["queries_10000"][name]
        same = "PASS" if large <= small else "**FAIL**"
        lines.append(f"| `{path}`: queries with 100 / 10,000 jobs | {small} / {large} | does not grow | {same} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    res = {
        "benchmark": "pages",
        "command": "make bench: .venv/bin/python bench/pages.py",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
    }
    web = None
    try:
        h.reset_data_dir()
        h.flush_redis()
        h.recreate_database()
        res.update(prepare())
        web = h.WebServer()
        web.wait_ready()
        res["timings_ms"] = time_pages(sign_in(web.url), web.url)
    finally:
        if web is not None:
            web.stop()
        h.flush_redis()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pages.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    md = markdown(res)
    (RESULTS / "pages.md").write_text(md)
    print(md, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

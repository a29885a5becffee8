"""`make bench`: the spine benchmark of dispatch -> worker -> backend, over real processes.

Creates the database `accelerator_bench`, starts the platform (serve_web) and Celery workers as
subprocesses, drives them over HTTP like accli, and writes
bench/results/spine.json and bench/results/spine.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402
import report  # noqa: E402

RESULTS = h.ROOT / "bench" / "results"
FINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}
# Worker layouts with two job slots. "2x-threads-c1": two worker processes, each `-P threads -c 1` (the pool
# docker-compose.yml and `make run` deploy with): the headline figures and docker use it.
# "prefork-c2": one worker, `-P prefork -c 2` (two child processes), measured on local beside it.
HEADLINE = "2x-threads-c1"
LAYOUTS = {
    "prefork-c2": {
        "key": "prefork-c2",
        "processes": 1,
        "pool": "prefork",
        "concurrency": 2,
        "describe": "1 worker, -P prefork -c 2",
    },
    "2x-threads-c1": {
        "key": "2x-threads-c1",
        "processes": 2,
        "pool": "threads",
        "concurrency": 1,
        "describe": "2 workers, each -P threads -c 1",
    },
}
TARGETS = {
    "dispatch_latency_median_ms": 100.0,  # local
    "overhead_ratio": 1.3,  # docker, finished_at based
    "throughput_jobs_per_s": 20.0,  # local, two job slots
}
STAMPS = (
    "created_at",
    "queued_at",
    "building_at",
    "mapping_inputs_at",
    "running_at",
    "mapping_outputs_at",
    "finished_at",
)


# --- reading what the platform recorded ---------------------------------------------------
def job_rows(ids: list[int]) -> dict[int, dict]:
    from jobs.models import Job

    rows = {}
    for row in Job.objects.filter(pk__in=ids).values("id", "status", "error_code", "message", *STAMPS):
        for key in STAMPS:
            row[key] = row[key].timestamp() if row[key] else float("nan")
        row["picked_at"] = row["building_at"] if row["building_at"] == row["building_at"] else row["mapping_inputs_at"]
        rows[row["id"]] = row
    return rows


def statuses(rows: dict[int, dict], ids: list[int]) -> dict:
    counts: dict[str, int] = {}
    failures = []
    for job_id in ids:
        row = rows.get(job_id, {"status": "MISSING"})
        counts[row["status"]] = counts.get(row["status"], 0) + 1
        if row["status"] != "SUCCEEDED" and len(failures) < 5:
            failures.append(
                {
                    "id": job_id,
                    "status": row["status"],
                    "error_code": row.get("error_code", ""),
                    "message": (row.get("message") or "")[:300],
                }
            )
    return {"counts": counts, "all_succeeded": counts.get("SUCCEEDED", 0) == len(ids), "examples": failures}


def phases(records: list[dict], rows: dict[int, dict]) -> dict:
    """Where the time of each job goes, from the client's clock and the job's timestamps (same host clock)."""
    spans = {
        "api_response": lambda r, j: r["t_resp"] - r["t0"],
        "call_to_created": lambda r, j: j["created_at"] - r["t0"],
        "created_to_queued": lambda r, j: j["queued_at"] - j["created_at"],
        "queued_to_picked_up": lambda r, j: j["picked_at"] - j["queued_at"],
        "response_to_picked_up": lambda r, j: j["picked_at"] - r["t_resp"],
        "picked_up_to_running": lambda r, j: j["running_at"] - j["picked_at"],
        "running_to_mapping_outputs": lambda r, j: j["mapping_outputs_at"] - j["running_at"],
        "mapping_outputs_to_finished": lambda r, j: j["finished_at"] - j["mapping_outputs_at"],
        "finished_to_seen_by_get": lambda r, j: r.get("t_seen", float("nan")) - j["finished_at"],
        "worker_service_time": lambda r, j: j["finished_at"] - j["picked_at"],
    }
    out = {}
    for name, fn in spans.items():
        vals = [fn(r, rows[r["id"]]) for r in records if r["id"] in rows]
        out[name] = h.summary(vals)
    return out


# --- scenarios ---------------------------------------------------------------------------------
def dispatcher(api: h.Api, via: str, routine_id: int):
    if via == "run":
        return lambda: api.run_routine(routine_id)
    task = h.trivial_task()
    return lambda: api.dispatch(task)


def sequential(api: h.Api, *, n: int, warmup: int, dispatch, raw_docker: int = 0, timeout: float = 60) -> dict:
    """One job at a time: dispatch, wait until GET says it is final, next.

    With raw_docker, `docker run --rm` samples (plain, and with the platform's container flags) are
    interleaved with the jobs, so both see the same engine and machine load.
    """
    records, raws, raws_flags, raws_none = [], [], [], []
    for _ in range(2 if raw_docker else 0):  # warm the CLI and the engine; not counted
        h.raw_docker_run()
        h.raw_docker_run(h.PLATFORM_RUN_FLAGS)
    every = max(1, n // raw_docker) if raw_docker else 0
    api.get_seconds.clear()
    for i in range(warmup + n):
        t0 = time.time()
        job_id = dispatch()
        t_resp = time.time()
        status, t_seen = api.wait_final(job_id, timeout=timeout)
        if i >= warmup:
            records.append({"id": job_id, "t0": t0, "t_resp": t_resp, "t_seen": t_seen})
            if raw_docker and (i - warmup) % every == 0 and len(raws) < raw_docker:
                raws.append(h.raw_docker_run())
                raws_flags.append(h.raw_docker_run(h.PLATFORM_RUN_FLAGS))
                raws_none.append(h.raw_docker_run(["--network", "none"]))
    if raw_docker:
        h.remove_raw_volume()
    rows = job_rows([r["id"] for r in records])
    lat = [rows[r["id"]]["running_at"] - r["t0"] for r in records]
    total_db = [rows[r["id"]]["finished_at"] - r["t0"] for r in records]
    total_get = [r["t_seen"] - r["t0"] for r in records]
    out = {
        "jobs": len(records),
        "warmup": warmup,
        "dispatch_latency_ms": h.summary(lat),
        "total_finished_at_ms": h.summary(total_db),
        "total_seen_by_get_ms": h.summary(total_get),
        "get_job_request_ms": h.summary(api.get_seconds),
        "phases_ms": phases(records, rows),
        "status": statuses(rows, [r["id"] for r in records]),
        "job_ids": [records[0]["id"], records[-1]["id"]] if records else [],
    }
    if raw_docker:
        out["raw_docker_run_ms"] = h.summary(raws)
        out["raw_docker_run_platform_flags_ms"] = h.summary(raws_flags)
        out["raw_docker_run_network_none_ms"] = h.summary(raws_none)
        out["raw_platform_flags"] = " ".join(h.PLATFORM_RUN_FLAGS)
        for name, base in (("", raws), ("_vs_platform_flags", raws_flags)):
            base_med = h.pct(base, 50)
            for key, vals in (("finished_at", total_db), ("seen_by_get", total_get)):
                med = h.pct(vals, 50)
                out[f"overhead_ratio_{key}{name}"] = round(med / base_med, 2) if med and base_med else None
    return out


def dispatch_many(dispatch, n: int, parallel: int) -> tuple[list[int], list[str], float, float]:
    t0 = time.time()
    ids, errors = [], []
    with ThreadPoolExecutor(parallel) as pool:
        futures = [pool.submit(dispatch) for _ in range(n)]
        for f in futures:
            try:
                ids.append(f.result())
            except Exception as exc:  # a refused dispatch is a result, not a crash of the bench
                errors.append(repr(exc)[:300])
    return ids, errors, t0, time.time()


def wait_all_final(ids: list[int], timeout: float) -> int:
    from jobs.models import Job

    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = Job.objects.filter(pk__in=ids, status__in=FINAL).count()
        if done == len(ids):
            break
        time.sleep(0.1)
    return done


def throughput_result(ids, errors, n, parallel, t0, t_dispatched, done, *, start: str) -> dict:
    rows = job_rows(ids)
    finished = [rows[i]["finished_at"] for i in ids if rows.get(i, {}).get("status") in FINAL]
    last = max(finished) if finished else float("nan")
    begin = t0 if start == "first_call" else min(rows[i]["picked_at"] for i in ids)
    elapsed = last - begin
    records = [{"id": i, "t0": t0, "t_resp": t_dispatched} for i in ids]
    ph = phases(records, rows)
    for key in ("api_response", "call_to_created", "response_to_picked_up", "finished_to_seen_by_get"):
        ph.pop(key, None)  # per-job client timestamps are not kept under concurrency
    return {
        "jobs": n,
        "dispatched": len(ids),
        "dispatch_errors": errors[:5],
        "dispatch_error_count": len(errors),
        "client_threads": parallel,
        "dispatch_s": round(t_dispatched - t0, 2),
        "dispatch_rate_per_s": round(len(ids) / (t_dispatched - t0), 1),
        "final": done,
        "timed_out": done < len(ids),
        "measured_from": start,
        "elapsed_s": round(elapsed, 2),
        "jobs_per_s": round(len(finished) / elapsed, 2) if finished and elapsed > 0 else None,
        "phases_ms": ph,
        "status": statuses(rows, ids),
    }


def throughput(api: h.Api, web: h.WebServer, workers, *, n: int, parallel: int, dispatch, timeout: float) -> dict:
    """Dispatch n jobs from `parallel` client threads while the workers run; time until all are final."""
    meter = h.CpuMeter(web, workers)
    ids, errors, t0, t_dispatched = dispatch_many(dispatch, n, parallel)
    done = wait_all_final(ids, timeout)
    out = throughput_result(ids, errors, n, parallel, t0, t_dispatched, done, start="first_call")
    out.update(meter.per_job(n))
    return out


def drain(
    api: h.Api, web: h.WebServer, layout: dict, backend: str, *, n: int, parallel: int, dispatch, timeout: float
) -> tuple[dict, list]:
    """Queue n jobs with no worker running, then start the workers: their rate without the web server competing."""
    ids, errors, t0, t_dispatched = dispatch_many(dispatch, n, parallel)
    workers = h.start_workers(layout, backend)
    meter = h.CpuMeter(web, workers)
    done = wait_all_final(ids, timeout)
    out = throughput_result(ids, errors, n, parallel, t0, t_dispatched, done, start="first_picked_up")
    out.update(meter.per_job(n))
    return out, workers


def web_check(api: h.Api, *, requests_n: int = 20) -> dict:
    """The web server alone (no worker running): cost of one small authenticated GET, and whether it reuses
    its database connections (CONN_MAX_AGE) or opens a new PostgreSQL session per request."""
    job_id = api.dispatch(h.trivial_task())  # stays QUEUED until the first workers start
    api.job(job_id)
    api.get_seconds.clear()
    before = h.pg_sessions()
    for _ in range(requests_n):
        api.job(job_id)
    time.sleep(0.5)
    opened = h.pg_sessions() - before
    return {
        "requests": requests_n,
        "get_job_request_ms": h.summary(api.get_seconds),
        "new_postgres_sessions": opened,
        "new_postgres_sessions_per_request": round(opened / requests_n, 2),
    }


def run_layout(api, web, seed, *, backend: str, layout: dict, args, latency: bool, run_endpoint: bool) -> dict:
    dispatch = dispatcher(api, "dispatch", seed["routine_id"])
    timeout = args.local_timeout if backend == "local" else args.docker_timeout
    out: dict = {"workers": layout["describe"]}
    workers: list = []
    try:
        if backend == "local" and args.drain:
            print(f"[bench] {backend}: {args.drain} jobs queued, then {layout['describe']} drain them", flush=True)
            out["drain"], workers = drain(
                api, web, layout, backend, n=args.drain, parallel=args.clients, dispatch=dispatch, timeout=timeout
            )
        else:
            print(f"[bench] {backend}: starting {layout['describe']}", flush=True)
            workers = h.start_workers(layout, backend)
        if latency:
            raw = args.raw if backend == "docker" else 0
            print(
                f"[bench] {backend}: {args.warmup}+{args.jobs} sequential jobs"
                f"{f' and 2x{raw} raw docker runs' if raw else ''}",
                flush=True,
            )
            out["sequential"] = sequential(api, n=args.jobs, warmup=args.warmup, dispatch=dispatch, raw_docker=raw)
        if run_endpoint:
            print(f"[bench] {backend}: {args.run_jobs} sequential jobs via POST /routines/<id>/run/", flush=True)
            out["sequential_run_endpoint"] = sequential(
                api, n=args.run_jobs, warmup=1, dispatch=dispatcher(api, "run", seed["routine_id"])
            )
        if args.throughput:
            print(f"[bench] {backend}: throughput, {args.throughput} jobs", flush=True)
            out["throughput"] = throughput(
                api, web, workers, n=args.throughput, parallel=args.clients, dispatch=dispatch, timeout=timeout
            )
    finally:
        h.stop_all(workers)
    return out


# --- machine ---------------------------------------------------------------------------------------
def machine() -> dict:
    def cmd(*argv) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return ""

    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "docker_server": cmd("docker", "-H", h.DOCKER_HOST, "version", "--format", "{{.Server.Version}}"),
        "postgres": cmd("psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version"),
        "loadavg_start": list(os.getloadavg()),
        "git_commit": cmd("git", "-C", str(h.ROOT), "rev-parse", "--short", "HEAD"),
        # platform files changed since that commit when the bench ran (the bench's own files left out)
        "git_modified": [
            line[3:]
            for line in cmd("git", "-C", str(h.ROOT), "status", "--porcelain", "--untracked-files=no").splitlines()
            if line[3:] and not line[3:].startswith(("bench/", "scripts/bench.sh"))
        ],
    }


def figures(res: dict) -> list[dict]:
    """The headline numbers with their targets."""
    out = []

    def add(name, value, unit, target=None, cmp="<=", note=""):
        ok = None
        if target is not None and value is not None:
            ok = value <= target if cmp == "<=" else value >= target
        elif target is not None:
            ok = False
        out.append(
            {
                "name": name,
                "value": value,
                "unit": unit,
                "target": f"{cmp} {target:g}" if target is not None else None,
                "pass": ok,
                "note": note,
            }
        )

    local = res.get("local", {})
    docker = res.get("docker", {})
    head = local.get(HEADLINE, {}).get("sequential", {})
    add(
        "local dispatch latency, median",
        head.get("dispatch_latency_ms", {}).get("median"),
        "ms",
        TARGETS["dispatch_latency_median_ms"],
        note=f"API call start -> running_at, {LAYOUTS[HEADLINE]['describe']}",
    )
    add("local dispatch latency, p95", head.get("dispatch_latency_ms", {}).get("p95"), "ms")
    add(
        "local trivial job total, median",
        head.get("total_finished_at_ms", {}).get("median"),
        "ms",
        note="API call start -> finished_at",
    )
    add("local trivial job total seen by GET, median", head.get("total_seen_by_get_ms", {}).get("median"), "ms")
    web = res.get("web", {})
    if web:
        add("GET /jobs/<id>/ alone, median", web["get_job_request_ms"].get("median"), "ms", note="no worker running")
        add(
            "new PostgreSQL sessions per HTTP request (web)",
            web["new_postgres_sessions_per_request"],
            "",
            note="0 when CONN_MAX_AGE connections are reused",
        )
    for key in LAYOUTS:
        thr = local.get(key, {}).get("drain")
        if thr:
            add(
                f"local drain rate, workers alone ({LAYOUTS[key]['describe']})",
                thr.get("jobs_per_s"),
                "jobs/s",
                note=f"{thr['jobs']} jobs queued first; first pick-up -> last finished_at",
            )
    for key in LAYOUTS:
        thr = local.get(key, {}).get("throughput")
        if thr:
            add(
                f"local throughput ({LAYOUTS[key]['describe']})",
                thr.get("jobs_per_s"),
                "jobs/s",
                TARGETS["throughput_jobs_per_s"],
                cmp=">=",
                note=f"{thr['jobs']} jobs, first call -> last finished_at",
            )
    dseq = docker.get(HEADLINE, {}).get("sequential", {})
    if dseq:
        add("docker dispatch latency, median", dseq.get("dispatch_latency_ms", {}).get("median"), "ms")
        add("docker dispatch latency, p95", dseq.get("dispatch_latency_ms", {}).get("p95"), "ms")
        add("docker trivial job total, median", dseq.get("total_finished_at_ms", {}).get("median"), "ms")
        add("raw docker run --rm busybox true, median", dseq.get("raw_docker_run_ms", {}).get("median"), "ms")
        add(
            "docker overhead ratio (finished_at)",
            dseq.get("overhead_ratio_finished_at"),
            "x",
            TARGETS["overhead_ratio"],
            note="median platform total / median raw docker run",
        )
        add("docker overhead ratio (seen by GET)", dseq.get("overhead_ratio_seen_by_get"), "x")
        add(
            "raw docker run with the platform's container flags, median",
            dseq.get("raw_docker_run_platform_flags_ms", {}).get("median"),
            "ms",
            note="--network none --init --memory --cpus --pids-limit --security-opt --mount (see JSON)",
        )
        add(
            "docker overhead ratio vs raw run with the same flags (finished_at)",
            dseq.get("overhead_ratio_finished_at_vs_platform_flags"),
            "x",
            note="like-for-like: what the platform adds on top of the engine",
        )
    for key in LAYOUTS:
        thr = docker.get(key, {}).get("throughput")
        if thr:
            add(
                f"docker throughput ({LAYOUTS[key]['describe']})",
                thr.get("jobs_per_s"),
                "jobs/s",
                note=f"{thr['jobs']} jobs",
            )
    failed = 0
    for backend in (local, docker):
        for layout in backend.values():
            for part in layout.values():
                if isinstance(part, dict) and "status" in part:
                    counts = part["status"]["counts"]
                    failed += sum(v for k, v in counts.items() if k != "SUCCEEDED")
    add("jobs not SUCCEEDED", failed, "jobs", 0)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--jobs", type=int, default=30, help="measured sequential jobs per backend")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--raw", type=int, default=15, help="raw `docker run` samples")
    p.add_argument("--run-jobs", type=int, default=10, help="sequential jobs via /routines/<id>/run/ (local)")
    p.add_argument("--throughput", type=int, default=200, help="jobs in each throughput run (0: skip)")
    p.add_argument(
        "--drain",
        type=int,
        default=200,
        help="local: jobs queued before the workers start, to time the workers alone (0: skip)",
    )
    p.add_argument("--clients", type=int, default=4, help="client threads dispatching in the throughput runs")
    p.add_argument("--local-timeout", type=float, default=60)
    p.add_argument("--docker-timeout", type=float, default=150)
    p.add_argument("--docker-layouts", default=HEADLINE, help="comma-separated; also: prefork-c2 (+~60 s)")
    p.add_argument("--skip-docker", action="store_true")
    p.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    p.add_argument("--out", default="spine", help="results file stem in bench/results/")
    args = p.parse_args()

    started = time.time()

    def on_term(*_):  # `kill` / timeout: unwind, so the finally blocks stop the web server and the workers
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    res: dict = {
        "benchmark": "spine",
        "command": " ".join(["make bench: .venv/bin/python bench/run.py", *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "database": h.DB_URL,
            "redis": h.REDIS_URL,
            "docker_host": h.DOCKER_HOST,
            "image": h.IMAGE,
            "command": "true",
            "dispatch": "POST /api/v1/aterm-cli/bench/jobs/dispatch/",
            "worker_flags": h.WORKER_FLAGS,
            "layouts": {k: v["describe"] for k, v in LAYOUTS.items()},
            "args": vars(args),
            "job_id_start": h.JOB_ID_START,
        },
        "local": {},
        "docker": {},
    }
    web = None
    error = None
    try:
        print("[bench] fresh database accelerator_bench, data dir var/bench, redis db 8", flush=True)
        h.reset_data_dir()
        h.flush_redis()
        h.recreate_database()
        h.setup_django()
        seed = h.migrate_and_seed()
        web = h.WebServer()
        web.wait_ready()
        api = h.Api(web.url, seed["token"], seed["project"])
        print(f"[bench] web on {web.url}", flush=True)
        res["web"] = web_check(api)

        for key in (HEADLINE, *(k for k in LAYOUTS if k != HEADLINE)):
            res["local"][key] = run_layout(
                api,
                web,
                seed,
                backend="local",
                layout=LAYOUTS[key],
                args=args,
                latency=True,
                run_endpoint=key == HEADLINE and args.run_jobs > 0,
            )
        if not args.skip_docker:
            for i, key in enumerate(k.strip() for k in args.docker_layouts.split(",") if k.strip()):
                res["docker"][key] = run_layout(
                    api, web, seed, backend="docker", layout=LAYOUTS[key], args=args, latency=i == 0, run_endpoint=False
                )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        res["error"] = traceback.format_exc()[-5000:]
        print(f"[bench] ERROR {error}", file=sys.stderr, flush=True)
    finally:
        if web is not None:
            web.stop()
        try:
            h.flush_redis()
        except Exception:
            pass
    res["machine"]["loadavg_end"] = list(os.getloadavg())
    res["duration_s"] = round(time.time() - started, 1)
    res["figures"] = figures(res)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    md = report.markdown(res)
    (RESULTS / f"{args.out}.md").write_text(md)
    print(md, flush=True)
    print(
        f"[bench] wrote {RESULTS / (args.out + '.json')} and {RESULTS / (args.out + '.md')} in {res['duration_s']} s",
        flush=True,
    )
    if error:
        return 1
    if args.strict and any(f["pass"] is False for f in res["figures"]):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

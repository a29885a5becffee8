"""Interactive-session proxy benchmark: small GETs through /interactive/<id>/ versus straight to the server.

On the docker backend, one interactive job at a time serves a ~100-byte
page; in the same run, the same client measures
- latency: sequential GETs on one kept-alive connection (where the server
  allows it), median and p95, proxy and direct;
- throughput: CONCURRENCY clients looping for SECONDS, requests per second;
- startup: dispatch (POST /run/) -> the session's URL answers 200 through
  the proxy (polled every 20 ms), over several sessions.
Two servers: busybox httpd (one process per connection, no keep-alive) and
the stdlib asyncio echo server of tests/interactive/servers.py (keep-alive).
Direct means the address the worker recorded (the container's IP on its own
network), reached from this host as the proxy reaches it.

Targets: median latency overhead <= 5 ms, proxy throughput >= 50% of direct.
Runs on its own database, Redis db, data directory and job id range.
Writes bench/results/proxy.json and proxy.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness as h  # noqa: E402

h.BENCH_DB = os.environ.get("ACC_BENCH_PROXY_DB", "accelerator_bench_proxy")
h.DB_URL = f"{h.PG}/{h.BENCH_DB}"
h.REDIS_URL = os.environ.get("ACC_BENCH_PROXY_REDIS_URL", "redis://127.0.0.1:6379/15")
h.DATA_DIR = h.ROOT / "var" / "bench-proxy"
h.JOB_ID_START = 1_600_000_000
_platform_env = h.platform_env

RESULTS = h.ROOT / "bench" / "results"
LAYOUT = {"key": "proxy", "processes": 1, "pool": "threads", "concurrency": 2, "describe": "1 worker, -P threads -c 2"}
LATENCY_REQUESTS = int(os.environ.get("ACC_BENCH_PROXY_REQUESTS", "500"))
CONCURRENCY = int(os.environ.get("ACC_BENCH_PROXY_CONCURRENCY", "8"))
SECONDS = float(os.environ.get("ACC_BENCH_PROXY_SECONDS", "5"))
STARTUPS = int(os.environ.get("ACC_BENCH_PROXY_STARTUPS", "5"))
TARGET_OVERHEAD_MS = 5.0
TARGET_THROUGHPUT = 0.5
PAGE = "<!doctype html><title>bench</title><p>" + "x" * 60 + "</p>"
SERVERS = {
    "busybox httpd": {
        "image": "acc-test/busybox:latest",
        "command": f"mkdir -p /www && printf '%s' '{PAGE}' > /www/index.html && exec httpd -f -p 8787 -h /www",
        "path": "index.html",
    },
    "python asyncio (keep-alive)": {
        "image": "acc-test/python:latest",
        "command": 'exec python3 -c "$ECHO_SERVER"',
        "path": "",
    },
}


# --- setup ------------------------------------------------------------------------------------
def seed_routines(project_slug: str) -> dict[str, int]:
    from django.contrib.auth import get_user_model

    from routines import services
    from routines.models import Project
    from tests.interactive.servers import ECHO_SERVER

    user = get_user_model().objects.get(username="bench")
    project = Project.objects.get(slug=project_slug)
    ids = {}
    for i, (name, server) in enumerate(SERVERS.items()):
        conf = {"interactive_socket": "0.0.0.0:8787"}
        if "ECHO_SERVER" in server["command"]:
            conf["ECHO_SERVER"] = ECHO_SERVER
        task = {
            "name": f"bench-session-{i}",
            "job_kwargs": {"docker_image": server["image"], "command": server["command"], "conf": conf},
            "timeout": 600,
        }
        ids[name] = services.save_routine(project=project, user=user, task=task, description=name).pk
    return ids


def browser_session(base_url: str) -> str:
    s = requests.Session()
    s.get(f"{base_url}/accounts/login/", timeout=10)
    r = s.post(
        f"{base_url}/accounts/login/",
        data={"username": "bench", "password": "bench-password-123", "csrfmiddlewaretoken": s.cookies["csrftoken"]},
        timeout=10,
    )
    r.raise_for_status()
    return s.cookies["sessionid"]


# --- a minimal HTTP/1.1 client (the same for both paths, so its own cost cancels out) -------------
class Conn:
    """One connection; reconnects when the server closes (busybox httpd answers one request per connection)."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]):
        self.host, self.port = host, port
        lines = [f"GET {path} HTTP/1.1", f"Host: {headers.pop('Host', host)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.reader = self.writer = None

    async def get(self) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            fields[key.strip().lower()] = value.strip().lower()
        if b"content-length" in fields:
            await self.reader.readexactly(int(fields[b"content-length"]))
            if fields.get(b"connection") == b"close":
                self.close()
        else:  # no length: the body runs to the end of the connection
            await self.reader.read()
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def latency(make_conn, n: int) -> dict:
    conn = make_conn()
    for _ in range(20):  # warm up (pools, caches)
        assert await conn.get() == 200
    seconds = []
    for _ in range(n):
        t0 = time.perf_counter()
        status = await conn.get()
        seconds.append(time.perf_counter() - t0)
        assert status == 200, status
    conn.close()
    return h.summary(seconds)


async def throughput(make_conn, clients: int, duration: float) -> dict:
    done, errors = [0], [0]
    stop_at = time.perf_counter() + duration

    async def loop():
        conn = make_conn()
        while time.perf_counter() < stop_at:
            try:
                if await conn.get() == 200:
                    done[0] += 1
                else:
                    errors[0] += 1
            except (OSError, asyncio.IncompleteReadError):
                errors[0] += 1
                conn.close()
        conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    return {"requests": done[0], "errors": errors[0], "seconds": round(elapsed, 2), "rps": round(done[0] / elapsed)}


# --- sessions -------------------------------------------------------------------------------------
def start_session(api: h.Api, routine_id: int, cookie: str, timeout: float = 60) -> tuple[int, str, float]:
    """Dispatch; (job id, session URL, seconds from dispatch to the first 200 through the proxy)."""
    t0 = time.perf_counter()
    job_id = api.run_routine(routine_id)
    deadline = time.monotonic() + timeout
    url = None
    with requests.Session() as s:
        s.cookies.set("sessionid", cookie)
        while time.monotonic() < deadline:
            if url is None:
                body = api.session.get(f"{api.base}/api/v1/jobs/{job_id}/session/", timeout=10)
                path = body.json().get("path") if body.status_code == 200 else None
                url = f"{api.base}{path}" if path else None
            elif s.get(url, timeout=10, allow_redirects=False).status_code == 200:
                return job_id, url, time.perf_counter() - t0
            time.sleep(0.02)
    raise RuntimeError(f"session of job {job_id} not reachable after {timeout} s")


def stop_session(api: h.Api, job_id: int) -> None:
    api.session.post(f"{api.base}/api/v1/jobs/{job_id}/session/stop/", timeout=30).raise_for_status()
    api.wait_final(job_id, timeout=60, interval=0.1)


def direct_address(job_id: int) -> tuple[str, int]:
    from workers.backends.sockets import split_address
    from workers.models import InteractiveSession

    _, host, port = split_address(InteractiveSession.objects.get(job_id=job_id).address)
    return host, port


async def compare(web: h.WebServer, url: str, path: str, direct_to: tuple[str, int], cookie: str) -> dict:
    host, port = direct_to
    proxy_path = url[len(web.url) :] + path

    def via_proxy():
        return Conn(
            "127.0.0.1", web.port, proxy_path, {"Host": f"127.0.0.1:{web.port}", "Cookie": f"sessionid={cookie}"}
        )

    def direct():
        return Conn(host, port, "/" + path, {"Host": f"{host}:{port}"})

    out = {"latency_ms": {}, "throughput": {}}
    for name, make in (("direct", direct), ("proxy", via_proxy)):
        out["latency_ms"][name] = await latency(make, LATENCY_REQUESTS)
    for name, make in (("direct", direct), ("proxy", via_proxy)):
        out["throughput"][name] = await throughput(make, CONCURRENCY, SECONDS)
    out["overhead_ms"] = round(out["latency_ms"]["proxy"]["median"] - out["latency_ms"]["direct"]["median"], 2)
    out["throughput_ratio"] = round(out["throughput"]["proxy"]["rps"] / max(1, out["throughput"]["direct"]["rps"]), 3)
    return out


def run_all(res: dict) -> None:
    web, workers = None, []
    try:
        h.reset_data_dir()
        h.flush_redis()
        h.recreate_database()
        h.platform_env = lambda **extra: _platform_env(**{"ACC_INSTANCE": "bench-proxy", **extra})
        h.setup_django()
        seeded = h.migrate_and_seed()
        routines = seed_routines(seeded["project"])
        web = h.WebServer()
        web.wait_ready()
        h.platform_env = lambda **extra: _platform_env(
            **{"ACC_INSTANCE": "bench-proxy", "ACC_INTERACTIVE_BASE_URL": web.url, **extra}
        )
        workers = h.start_workers(LAYOUT, "docker")
        api = h.Api(web.url, seeded["token"], seeded["project"])
        cookie = browser_session(web.url)
        for name, server in SERVERS.items():
            startups = []
            for _ in range(STARTUPS - 1):
                job_id, _url, seconds = start_session(api, routines[name], cookie)
                startups.append(seconds)
                stop_session(api, job_id)
            job_id, url, seconds = start_session(api, routines[name], cookie)
            startups.append(seconds)
            try:
                direct_to = direct_address(job_id)
                res["servers"][name] = asyncio.run(compare(web, url, server["path"], direct_to, cookie))
            finally:
                stop_session(api, job_id)
            res["servers"][name]["dispatch_to_reachable_ms"] = h.summary(startups)
    finally:
        h.stop_all(workers)
        if web is not None:
            web.stop()
        h.flush_redis()


# --- report -----------------------------------------------------------------------------------------
def markdown(res: dict) -> str:
    lines = [
        "# Interactive-session proxy benchmark",
        "",
        f"- date: {res['date']}; machine: {res['machine']}; workers: {LAYOUT['describe']}; backend: docker",
        f"- command: `{res['command']}`",
        f"- small GETs (~{len(PAGE)} bytes) to an interactive job, through daphne's proxy (session cookie) and",
        "  straight to the container's address, by the same minimal HTTP/1.1 client in the same run;",
        f"  latency: {LATENCY_REQUESTS} sequential GETs on one connection (reopened when the server closes it);",
        f"  throughput: {CONCURRENCY} concurrent clients for {SECONDS:g} s; startup: dispatch -> first 200 "
        f"through the proxy, {STARTUPS} sessions",
        "",
        "| server | figure | direct | proxy | target | result |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res.get("servers", {}).items():
        lat, thr = r["latency_ms"], r["throughput"]
        ok_lat = r["overhead_ms"] <= TARGET_OVERHEAD_MS
        ok_thr = r["throughput_ratio"] >= TARGET_THROUGHPUT
        lines += [
            f"| {name} | median latency | {lat['direct']['median']} ms | {lat['proxy']['median']} ms "
            f"| overhead <= {TARGET_OVERHEAD_MS:g} ms (got {r['overhead_ms']} ms) "
            f"| {'PASS' if ok_lat else '**FAIL**'} |",
            f"| {name} | p95 latency | {lat['direct']['p95']} ms | {lat['proxy']['p95']} ms | | |",
            f"| {name} | requests per second | {thr['direct']['rps']} | {thr['proxy']['rps']} "
            f"| >= {TARGET_THROUGHPUT:.0%} of direct (got {r['throughput_ratio']:.0%}) "
            f"| {'PASS' if ok_thr else '**FAIL**'} |",
            f"| {name} | errors during throughput | {thr['direct']['errors']} | {thr['proxy']['errors']} | 0 | |",
            f"| {name} | dispatch -> URL reachable, median (min / max) | | "
            f"{r['dispatch_to_reachable_ms']['median']} ms ({r['dispatch_to_reachable_ms']['min']} / "
            f"{r['dispatch_to_reachable_ms']['max']}) | | |",
        ]
    if res.get("error"):
        lines += ["", f"Error: `{res['error']}`"]
    return "\n".join(lines) + "\n"


def main() -> int:
    res = {
        "benchmark": "proxy",
        "command": "make bench: .venv/bin/python bench/proxy.py",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        "database": h.BENCH_DB,
        "redis": h.REDIS_URL,
        "servers": {},
    }
    code = 0
    try:
        run_all(res)
    except Exception as exc:
        res["error"] = f"{type(exc).__name__}: {exc}"
        code = 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "proxy.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    md = markdown(res)
    (RESULTS / "proxy.md").write_text(md)
    print(md, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Interactive-session proxy benchmark: small GETs through /interactive/<id>/ versus straight to the server.

On the docker backend, one interactive job at a time serves a ~100-byte
page; in the same run, the bench measures three ways to it:
- direct: the address the worker recorded (the container's IP on its own
  network), reached from this host as the proxy reaches it;
- proxy: the session URL, served by `manage.py serve_proxy` (uvicorn), as
  `make run` and docker-compose deploy it;
- platform mount: the same proxy app mounted in the platform's own server, serve_web (for a
  deployment that keeps one origin), for comparison.
Figures:
- latency: sequential GETs on one kept-alive connection (where the server
  allows it) by a minimal asyncio client, median and p95;
- throughput: wrk (C, so the load generator leaves the CPUs to the servers)
  with CONCURRENCY connections for SECONDS, requests per second and errors;
- startup: dispatch (POST /run/) -> the session's URL answers 200 through
  the proxy (polled every 20 ms), over several sessions.
Two servers: busybox httpd (one process per connection, no keep-alive; the
issue's example) and the stdlib asyncio echo server of
tests/interactive/servers.py (keep-alive, far faster than any Python proxy).

Every connection to busybox is a new one, and the kernel keeps a closed one
in TIME_WAIT for 60 s: before each throughput run the bench waits until
enough local ports are free, so no run is cut short by the one before.

Targets: median latency overhead <= 5 ms, proxy throughput >= 50% of direct.
Runs on its own database, Redis db, data directory and job id range.
Writes bench/results/proxy.json and proxy.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shutil
import subprocess
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
STARTUPS = int(os.environ.get("ACC_BENCH_PROXY_STARTUPS", "5"))
SECONDS = float(os.environ.get("ACC_BENCH_PROXY_SECONDS", "3"))
FREE_PORTS_NEEDED = 16_000  # local ports a throughput run may use up (busybox: one connection per request)
WAYS = ("direct", "proxy", "daphne")
TARGET_OVERHEAD_MS = 5.0
TARGET_THROUGHPUT = 0.5
PAGE = "<!doctype html><title>bench</title><p>" + "x" * 60 + "</p>"
SERVERS = {
    "busybox httpd": {
        "image": "acc-test/busybox:latest",
        "command": f"mkdir -p /www && printf '%s' '{PAGE}' > /www/index.html && exec httpd -f -p 8787 -h /www",
        "path": "index.html",
        "targets": True,  # the example server: the targets apply
    },
    "python asyncio (keep-alive)": {
        "image": "acc-test/python:latest",
        "command": 'exec python3 -c "$ECHO_SERVER"',
        "path": "",
        # ~35,000 answers a second on its own, more than any Python proxy forwards: its row shows the proxy's
        # own ceiling, reported as measured, with no verdict
        "targets": False,
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


def free_ports(host: str) -> int:
    """Local ports still free for new connections to `host` (the range minus those in TIME_WAIT there)."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    waiting = subprocess.run(
        ["ss", "-Htn", "state", "time-wait", "dst", host], capture_output=True, text=True, check=True
    ).stdout.count("\n")
    return high - low + 1 - waiting


def wait_for_ports(host: str, limit: float = 70) -> float:
    """Wait (at most `limit` s) until a throughput run cannot run out of ports; the seconds waited."""
    t0 = time.monotonic()
    while free_ports(host) < FREE_PORTS_NEEDED and time.monotonic() - t0 < limit:
        time.sleep(1)
    return round(time.monotonic() - t0, 1)


def throughput(url: str, headers: dict[str, str], host: str) -> dict:
    """wrk with CONCURRENCY connections on one thread for SECONDS: requests per second and every kind of error."""
    waited = wait_for_ports(host)
    cmd = ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{SECONDS:g}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True, timeout=SECONDS + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return {"requests": done, "errors": errors, "rps": round(rps), "waited_for_ports_s": waited}


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
                url = body.json().get("url") if body.status_code == 200 else None
            elif s.get(url, timeout=10, allow_redirects=False).status_code == 200:
                return job_id, url, time.perf_counter() - t0
            time.sleep(0.02)
    raise RuntimeError(f"session of job {job_id} not reachable after {timeout} s")


def stop_session(api: h.Api, job_id: int) -> None:
    api.session.post(f"{api.base}/api/v1/jobs/{job_id}/session/stop/", timeout=30).raise_for_status()
    api.wait_final(job_id, timeout=60, interval=0.1)


def direct_address(job_id: int) -> tuple[str, int]:
    from backends.sockets import split_address
    from jobs.models import InteractiveSession

    _, host, port = split_address(InteractiveSession.objects.get(job_id=job_id).address)
    return host, port


async def latencies(ways: dict) -> dict:
    return {name: await latency(make, LATENCY_REQUESTS) for name, make in ways.items()}


def compare(web: h.WebServer, proxy: SessionProxy, url: str, path: str, direct_to: tuple[str, int], cookie: str):
    host, port = direct_to
    proxy_path = url[len(proxy.url) :] + path
    ends = {
        "direct": (host, port, "/" + path, {"Host": f"{host}:{port}"}),
        "proxy": ("127.0.0.1", proxy.port, proxy_path, {"Host": f"127.0.0.1:{proxy.port}"}),
        "daphne": ("127.0.0.1", web.port, proxy_path, {"Host": f"127.0.0.1:{web.port}"}),
    }
    for name in ("proxy", "daphne"):
        ends[name][3]["Cookie"] = f"sessionid={cookie}"

    def client(name):
        where, at, target, headers = ends[name]
        return lambda: Conn(where, at, target, dict(headers))

    out = {"latency_ms": asyncio.run(latencies({name: client(name) for name in WAYS})), "throughput": {}}
    for name in WAYS:
        where, at, target, headers = ends[name]
        out["throughput"][name] = throughput(f"http://{where}:{at}{target}", headers, host)
    for name in ("proxy", "daphne"):
        lat, thr = out["latency_ms"], out["throughput"]
        out[f"{name}_overhead_ms"] = round(lat[name]["median"] - lat["direct"]["median"], 2)
        out[f"{name}_throughput_ratio"] = round(thr[name]["rps"] / max(1, thr["direct"]["rps"]), 3)
    return out


class SessionProxy(h.Proc):
    """`manage.py serve_proxy` on its own port, as make run starts it."""

    def __init__(self, port: int, env: dict):
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        super().__init__("proxy", [h.PY, "manage.py", "serve_proxy", "--port", str(port)], env)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                requests.get(f"{self.url}/interactive/", timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"the session proxy is not answering after {timeout}s:\n{self.tail()}")


def run_all(res: dict) -> None:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is needed for the throughput figures (scripts/bench.sh installs it)")
    web, proxy, workers = None, None, []
    try:
        h.reset_data_dir()
        h.flush_redis()
        h.recreate_database()
        sessions_port = h.free_port()
        sessions = {"ACC_INSTANCE": "bench-proxy", "ACC_INTERACTIVE_BASE_URL": f"http://127.0.0.1:{sessions_port}"}
        h.platform_env = lambda **extra: _platform_env(**{**sessions, **extra})
        h.setup_django()
        seeded = h.migrate_and_seed()
        routines = seed_routines(seeded["project"])
        web = h.WebServer()
        web.wait_ready()
        proxy = SessionProxy(sessions_port, h.platform_env(ACC_PUBLIC_URL=web.url))
        proxy.wait_ready()
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
                res["servers"][name] = compare(web, proxy, url, server["path"], direct_to, cookie)
            finally:
                stop_session(api, job_id)
            res["servers"][name]["dispatch_to_reachable_ms"] = h.summary(startups)
    finally:
        h.stop_all(workers)
        for served in (proxy, web):
            if served is not None:
                served.stop()
        h.flush_redis()


# --- report -----------------------------------------------------------------------------------------
def markdown(res: dict) -> str:
    lines = [
        "# Interactive-session proxy benchmark",
        "",
        f"- date: {res['date']}; machine: {res['machine']}; workers: {LAYOUT['describe']}; backend: docker",
        f"- command: `{res['command']}`",
        f"- small GETs (~{len(PAGE)} bytes) to an interactive job: **direct** to the container's address, through",
        "  the **proxy** (`manage.py serve_proxy`, uvicorn, the session URL `make run` writes to the log) and",
        "  through the same proxy app **mounted in serve_web** (single-origin deployments), in the same run;",
        f"  latency: {LATENCY_REQUESTS} sequential GETs on one connection (reopened when the server closes it);",
        f"  throughput: wrk, {CONCURRENCY} connections for {SECONDS:g} s; startup: dispatch -> first 200 "
        f"through the proxy, {STARTUPS} sessions",
        "",
        "| server | figure | direct | proxy | platform mount | target (proxy) | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in res.get("servers", {}).items():
        lat, thr = r["latency_ms"], r["throughput"]
        ok_lat = r["proxy_overhead_ms"] <= TARGET_OVERHEAD_MS
        ok_thr = r["proxy_throughput_ratio"] >= TARGET_THROUGHPUT
        judged = SERVERS.get(name, {}).get("targets", True)
        verdict_thr = ("PASS" if ok_thr else "**FAIL**") if judged else "ceiling, no verdict"
        start = r["dispatch_to_reachable_ms"]
        lines += [
            f"| {name} | median latency | {lat['direct']['median']} ms | {lat['proxy']['median']} ms "
            f"| {lat['daphne']['median']} ms | overhead <= {TARGET_OVERHEAD_MS:g} ms (got {r['proxy_overhead_ms']} ms) "
            f"| {'PASS' if ok_lat else '**FAIL**'} |",
            f"| {name} | p95 latency | {lat['direct']['p95']} ms | {lat['proxy']['p95']} ms "
            f"| {lat['daphne']['p95']} ms | | |",
            f"| {name} | requests per second | {thr['direct']['rps']} | {thr['proxy']['rps']} "
            f"({r['proxy_throughput_ratio']:.0%}) | {thr['daphne']['rps']} ({r['daphne_throughput_ratio']:.0%}) "
            f"| >= {TARGET_THROUGHPUT:.0%} of direct | {verdict_thr} |",
            f"| {name} | errors during throughput | {thr['direct']['errors']} | {thr['proxy']['errors']} "
            f"| {thr['daphne']['errors']} | 0 | |",
            f"| {name} | dispatch -> URL reachable, median (min / max) | | "
            f"{start['median']} ms ({start['min']} / {start['max']}) | | | |",
        ]
    lines += [
        "",
        "busybox httpd (the issue's example) forks a process per connection: its ratio shows what the proxy adds",
        "to a server that does some work per request. The asyncio echo server answers ~35,000 small requests a",
        "second by itself: its row shows the proxy process's own ceiling (one Python process, on the same 2 CPUs",
        "as wrk and the server). A session whose server is that fast gets that ceiling, far below half of direct:",
        "the 50 % target is not met there. More proxy processes behind a front server raise it on more CPUs.",
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

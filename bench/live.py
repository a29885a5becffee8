"""Live log benchmark: a line printed inside a job -> its arrival at a websocket client, on `local` and `docker`.

A job prints `tick <i> <time.time()>` every 100 ms (python3 on the host for
`local`, in acc-test/python:latest for `docker`; both read the same machine
clock). A client signed in like a browser (session cookie from the login
form) holds one websocket on /ws/live/ of the real web server (uvicorn,
`manage.py serve_web`), subscribes to the job right after dispatching it
and stamps every message on arrival;
latency = arrival - the printed timestamp, per line. Writes
bench/results/live.json and live.md.

Runs on its own database, Redis db, data directory and job id range (see
ENV below), so it does not disturb a test suite or the other benchmarks.
"""

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402

# The harness's fixed names belong to bench/run.py and bench/flows.py; this benchmark uses its own.
h.BENCH_DB = os.environ.get("ACC_BENCH_LIVE_DB", "accelerator_bench_live")
h.DB_URL = f"{h.PG}/{h.BENCH_DB}"
h.REDIS_URL = os.environ.get("ACC_BENCH_LIVE_REDIS_URL", "redis://127.0.0.1:6379/14")
h.DATA_DIR = h.ROOT / "var" / "bench-live"
h.JOB_ID_START = 1_500_000_000  # docker names containers acc-job-<id> on an engine others share
_platform_env = h.platform_env
h.platform_env = lambda **extra: _platform_env(**{"ACC_INSTANCE": "bench-live", **extra})

RESULTS = h.ROOT / "bench" / "results"
LAYOUT = {"key": "live", "processes": 1, "pool": "threads", "concurrency": 2, "describe": "1 worker, -P threads -c 2"}
BACKENDS = ("local", "docker")
TICKS = 150
TARGET_MEDIAN_MS = 250.0
FINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}
TICK_COMMAND = (
    'python3 -u -c "import sys, time\n'
    "for i in range(int(sys.argv[1])):\n"
    "    print('tick', i, '%.6f' % time.time(), flush=True)\n"
    '    time.sleep(0.1)" {ticks}'
)


# --- setup -----------------------------------------------------------------------------------
def create_tick_routine(project_slug: str) -> int:
    from django.contrib.auth import get_user_model

    from routines import services
    from routines.models import Project

    user = get_user_model().objects.get(username="bench")
    task = {
        "name": "bench-ticks",
        "job_kwargs": {"docker_image": "acc-test/python:latest", "command": TICK_COMMAND.format(ticks=TICKS)},
        "timeout": 120,
    }
    project = Project.objects.get(slug=project_slug)
    return services.save_routine(project=project, user=user, task=task, description="prints timestamps").pk


def browser_session(base_url: str) -> str:
    """Sign in through the login form like a browser; the session id the websocket authenticates with."""
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
        raise RuntimeError(f"login failed ({r.status_code}): {r.text[:500]}")
    return s.cookies["sessionid"]


# --- the websocket client ----------------------------------------------------------------------
def _client_factory(url: str, **kwargs):
    """autobahn on asyncio, imported here: the `--seed` child loads Django, whose imports may pin txaio to Twisted."""
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

    class Protocol(WebSocketClientProtocol):
        def onOpen(self):
            self.factory.ready.set_result(self)

        def onMessage(self, payload, isBinary):
            self.factory.inbox.put_nowait((time.time(), json.loads(payload)))

        def onClose(self, wasClean, code, reason):
            if not self.factory.ready.done():
                self.factory.ready.set_exception(RuntimeError(f"websocket closed: {code} {reason}"))
            self.factory.inbox.put_nowait((time.time(), {"type": "closed", "code": code}))

    factory = WebSocketClientFactory(url, **kwargs)
    factory.protocol = Protocol
    return factory


class LiveSocket:
    """One /ws/live/ socket; every message is stamped with time.time() when it arrives."""

    async def connect(self, base_url: str, session_id: str) -> None:
        loop = asyncio.get_running_loop()
        url = urlparse(base_url)
        factory = _client_factory(
            f"ws://{url.netloc}/ws/live/", origin=base_url, headers={"Cookie": f"sessionid={session_id}"}
        )
        factory.ready = loop.create_future()
        factory.inbox = self.inbox = asyncio.Queue()
        await loop.create_connection(factory, url.hostname, url.port)
        self.proto = await asyncio.wait_for(factory.ready, 10)

    def send(self, message: dict) -> None:
        self.proto.sendMessage(json.dumps(message).encode())

    async def receive(self, deadline: float) -> tuple[float, dict]:
        arrived, message = await asyncio.wait_for(self.inbox.get(), timeout=max(0.0, deadline - time.monotonic()))
        if message["type"] == "closed":
            raise RuntimeError(f"websocket closed by the server: {message}")
        return arrived, message

    async def close(self, timeout: float = 5) -> None:
        """Close and wait for the server's side of the closing handshake."""
        self.proto.sendClose()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, message = await asyncio.wait_for(self.inbox.get(), timeout=max(0.0, deadline - time.monotonic()))
            if message["type"] == "closed":
                return


# --- measuring ---------------------------------------------------------------------------------
async def watch_job(sock: LiveSocket, api: h.Api, routine_id: int, timeout: float = 120) -> dict:
    """Dispatch a tick job, subscribe at once, stamp every tick line until the job is final."""
    loop = asyncio.get_running_loop()
    job_id = await loop.run_in_executor(None, api.run_routine, routine_id)
    sock.send({"action": "subscribe", "job": job_id})
    deadline = time.monotonic() + timeout
    latencies, ticks, seqs, text = [], set(), [], []
    subscribed_status = status = None
    while status not in FINAL:
        arrived, message = await sock.receive(deadline)
        if message.get("job") != job_id:
            continue
        if message["type"] == "error":
            raise RuntimeError(f"subscription refused: {message}")
        if message["type"] == "subscribed":
            subscribed_status = message["status"]
        elif message["type"] == "status":
            status = message["status"]
        elif message["type"] == "log":
            seqs.append(message["seq"])
            text.append(message["text"])
            for line in message["text"].splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[0] == "tick":
                    ticks.add(int(parts[1]))
                    latencies.append(arrived - float(parts[2]))
    sock.send({"action": "unsubscribe", "job": job_id})
    stored = await loop.run_in_executor(None, stored_log, api, job_id)
    return {
        "job": job_id,
        "status": status,
        "status_when_subscribed": subscribed_status,
        "ticks_printed": TICKS,
        "ticks_received": len(ticks),
        "chunks": len(seqs),
        "seqs_in_order_without_repeats_or_gaps": seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else False,
        "socket_text_equals_stored_log": "".join(text) == stored,
        "latency_ms": h.summary(latencies),
    }


def stored_log(api: h.Api, job_id: int) -> str:
    r = api.session.get(f"{api.base}/api/v1/jobs/{job_id}/logs/", timeout=30)
    r.raise_for_status()
    return "".join(c["text"] for c in r.json()["chunks"])


async def measure(web: h.WebServer, api: h.Api, session_id: str, routine_id: int, backend: str) -> dict:
    workers = h.start_workers(LAYOUT, backend)
    sock = LiveSocket()
    try:
        await sock.connect(web.url, session_id)
        return await watch_job(sock, api, routine_id)
    finally:
        if getattr(sock, "proto", None) is not None:
            await sock.close()
        h.stop_all(workers)


# --- report --------------------------------------------------------------------------------------
def markdown(res: dict) -> str:
    rows = []
    for backend in BACKENDS:
        r = res.get(backend)
        if not r or "latency_ms" not in r:
            rows.append((f"{backend}: log latency, median", "not measured", f"<= {TARGET_MEDIAN_MS:g} ms", False))
            continue
        lat = r["latency_ms"]
        ok = lat.get("median") is not None and lat["median"] <= TARGET_MEDIAN_MS
        rows += [
            (f"{backend}: log latency, median", f"{lat.get('median')} ms", f"<= {TARGET_MEDIAN_MS:g} ms", ok),
            (f"{backend}: log latency, p95", f"{lat.get('p95')} ms", "", None),
            (f"{backend}: log latency, min / max", f"{lat.get('min')} / {lat.get('max')} ms", "", None),
            (f"{backend}: tick lines received", f"{r['ticks_received']}/{r['ticks_printed']}", "all", None),
            (
                f"{backend}: socket log = stored log, seqs in order, no repeats or gaps",
                str(r["socket_text_equals_stored_log"] and r["seqs_in_order_without_repeats_or_gaps"]),
                "True",
                None,
            ),
        ]
    lines = [
        "# Live log benchmark",
        "",
        f"- date: {res['date']}; machine: {res['machine']}; workers: {LAYOUT['describe']}",
        f"- command: `{res['command']}`",
        f"- one job per backend prints `tick <i> <time.time()>` every 100 ms ({TICKS} lines); a websocket client",
        "  signed in with a session cookie subscribes on /ws/live/ of uvicorn and stamps each message on arrival;",
        f"  latency = arrival - printed timestamp, per line (log batching: ACC_LOG_FLUSH_SECONDS={res['flush']})",
        "",
        "| figure | value | target | result |",
        "|---|---|---|---|",
    ]
    for name, value, target, ok in rows:
        verdict = "" if ok is None else ("PASS" if ok else "**FAIL**")
        lines.append(f"| {name} | {value} | {target} | {verdict} |")
    if res.get("error"):
        lines += ["", f"Error: `{res['error']}`"]
    return "\n".join(lines) + "\n"


def seed() -> dict:
    """Migrate and seed in a child process (`live.py --seed`): this process must not load Django, whose imports
    (daphne's Twisted, when installed) may pin txaio, and so autobahn, to Twisted, while the client here uses
    autobahn on asyncio."""
    out = subprocess.run(
        [h.PY, __file__, "--seed"], env=h.platform_env(), capture_output=True, text=True, timeout=300, cwd=h.ROOT
    )
    if out.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def seed_here() -> None:
    h.setup_django()
    seeded = h.migrate_and_seed()
    seeded["routine_id"] = create_tick_routine(seeded["project"])
    print(json.dumps(seeded), flush=True)


async def run_all(res: dict) -> None:
    web = None
    try:
        h.reset_data_dir()
        h.flush_redis()
        h.recreate_database()
        seeded = seed()
        web = h.WebServer()
        web.wait_ready()
        api = h.Api(web.url, seeded["token"], seeded["project"])
        session_id = browser_session(web.url)
        for backend in BACKENDS:
            res[backend] = await measure(web, api, session_id, seeded["routine_id"], backend)
    finally:
        if web is not None:
            web.stop()
        h.flush_redis()


def main() -> int:
    res = {
        "benchmark": "live",
        "command": "make bench: .venv/bin/python bench/live.py",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        "flush": os.environ.get("ACC_LOG_FLUSH_SECONDS", "0.1"),
        "database": h.BENCH_DB,
        "redis": h.REDIS_URL,
    }
    code = 0
    try:
        asyncio.run(run_all(res))
    except Exception as exc:
        res["error"] = f"{type(exc).__name__}: {exc}"
        code = 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "live.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    md = markdown(res)
    (RESULTS / "live.md").write_text(md)
    print(md, flush=True)
    return code


if __name__ == "__main__":
    if sys.argv[1:] == ["--seed"]:
        seed_here()
        sys.exit(0)
    sys.exit(main())

"""Upload benchmark: the web server's memory and throughput for 2 GiB uploads, beside `dd` on the same disk.

For the platform's server (uvicorn, `manage.py serve_web`) and, as the
anchor, daphne serving the same application: an anonymous client declares
and sends a 2 GiB PUT to the files API (the time until it is answered, how
much it had sent by then, and the server's RSS growth: peak VmHWM during the
request minus VmRSS before it, the peak reset through /proc/<pid>/clear_refs);
then the project's owner uploads 2 GiB (MB/s until the 201, and with an
fsync of the stored file, beside `dd bs=1M count=2048 conv=fdatasync` into
the same storage folder, in a few rounds in turning order, medians reported).
Beside them, the same client sends to bare uvicorn apps (bench/upload_ceiling.py:
drain, write, hash and write) to show the ceiling of any design on uvicorn.
Writes bench/results/upload.json and upload.md.

Runs on its own database, Redis db and data directory. `--no-daphne` skips
the anchor (it holds the whole body in memory: about 2 GB per upload);
`--rounds N` sets the rounds (default 3).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402

h.BENCH_DB = os.environ.get("ACC_BENCH_UPLOAD_DB", "accelerator_bench_upload")
h.DB_URL = f"{h.PG}/{h.BENCH_DB}"
h.REDIS_URL = os.environ.get("ACC_BENCH_UPLOAD_REDIS_URL", "redis://127.0.0.1:6379/13")
h.DATA_DIR = h.ROOT / "var" / "bench-upload"
_platform_env = h.platform_env
h.platform_env = lambda **extra: _platform_env(**{"ACC_INSTANCE": "bench-upload", **extra})

RESULTS = h.ROOT / "bench" / "results"
MiB = 1024 * 1024
SIZE = 2048 * MiB
TARGET_GROWTH = 64 * MiB
PIECE = os.urandom(MiB)


def servers(port: int) -> dict[str, list[str]]:
    return {
        "uvicorn": [h.PY, "manage.py", "serve_web", "--host", "127.0.0.1", "--port", str(port)],
        "daphne": [h.PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "accelerator.asgi:application"],
    }


class Server(h.Proc):
    def __init__(self, name: str):
        self.port = h.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = h.platform_env(ACC_MAX_UPLOAD_BYTES=str(2 * SIZE))
        super().__init__(f"web-{name}", servers(self.port)[name], env)
        deadline = time.monotonic() + 60
        while True:
            self.check_alive()
            try:
                requests.get(f"{self.url}/api/v1/projects/", timeout=2)
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not answering:\n{self.tail()}") from None
                time.sleep(0.2)

    def status(self, field: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field} for {self.name}")

    def reset_peak(self) -> int:
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        return self.status("VmRSS")


def anonymous_upload(server: Server, path: str) -> dict:
    """Declare and send SIZE bytes without credentials until answered: status, seconds, bytes sent."""
    before = server.reset_peak()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=600)
    t0 = time.perf_counter()
    sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {SIZE}\r\n\r\n".encode())
    sock.setblocking(False)
    sent, answer, view = 0, b"", memoryview(PIECE)
    while not answer:
        readable, writable, _ = select.select([sock], [sock] if sent < SIZE else [], [], 600)
        if readable:
            answer = sock.recv(65536) or b"(closed)"
        elif writable:
            try:
                sent += sock.send(view[: min(MiB, SIZE - sent)])
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
        elif not readable:
            break
    seconds = time.perf_counter() - t0
    sock.close()
    growth = server.status("VmHWM") - before
    return {
        "status": answer.split(b" ", 2)[1].decode() if answer else "none",
        "answer_s": seconds,
        "sent": sent,
        "rss_growth": growth,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process `pid` and its threads, ended ones included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def put(port: int, path: str, headers: dict, server_pid: int) -> dict:
    """PUT SIZE bytes in 1 MiB pieces (http.client, as a script would); seconds until answered, CPU both sides."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    server0, client0, t0 = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
    conn.request(
        "PUT", path, body=(PIECE for _ in range(SIZE // MiB)), headers={"Content-Length": str(SIZE), **headers}
    )
    response = conn.getresponse()
    body = response.read()
    seconds = time.perf_counter() - t0
    conn.close()
    if response.status != 201:
        raise RuntimeError(f"upload answered {response.status}: {body[:300]!r}")
    return {
        "seconds": seconds,
        "mb_s": SIZE / seconds / 1e6,
        "server_cpu_s": cpu_seconds(server_pid) - server0,
        "client_cpu_s": time.process_time() - client0,
    }


def owner_upload(server: Server, path: str, token: str, stored: Path) -> dict:
    """The owner uploads SIZE bytes: MB/s until the 201, and including an fsync of the stored file; RSS growth."""
    before = server.reset_peak()
    row = put(server.port, path, {"x-authorization": token}, server.proc.pid)
    growth = server.status("VmHWM") - before
    t1 = time.perf_counter()
    fd = os.open(stored, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    synced = row["seconds"] + time.perf_counter() - t1
    stored.unlink()
    return {**row, "synced_mb_s": SIZE / synced / 1e6, "rss_growth": growth}


class Ceiling(h.Proc):
    """A bare uvicorn (serve_web's flags) serving bench/upload_ceiling.py in one of its modes."""

    def __init__(self, mode: str, folder: Path):
        self.port = h.free_port()
        argv = [h.PY, "-m", "uvicorn", "upload_ceiling:app", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--loop", "uvloop", "--http", "httptools", "--lifespan", "off", "--log-level", "warning"]
        argv += ["--app-dir", str(Path(__file__).resolve().parent)]
        super().__init__(f"ceiling-{mode}", argv, {**os.environ, "ACC_CEILING": mode, "ACC_CEILING_DIR": str(folder)})
        deadline = time.monotonic() + 30
        while True:
            self.check_alive()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not answering:\n{self.tail()}") from None
                time.sleep(0.1)


def dd(folder: Path) -> float:
    """MB/s of dd writing 2 GiB with fdatasync into `folder`."""
    target = folder / "dd.bin"
    out = subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", "count=2048", "conv=fdatasync"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    target.unlink()
    match = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", out)
    return int(match.group(1)) / float(match.group(2)) / 1e6


CEILINGS = ("drain", "file", "sha256", "thread")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-daphne", action="store_true", help="skip the daphne anchor")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of dd, upload and ceilings (default 3)")
    args = parser.parse_args()
    h.recreate_database()
    h.reset_data_dir()
    h.flush_redis()
    h.setup_django()
    seed = h.migrate_and_seed()
    from routines.models import Project

    project_pk = Project.objects.get(slug=seed["project"]).pk
    storage = h.DATA_DIR / "storage"
    stored = storage / f"projects/{project_pk}/big.bin"
    path = f"/api/v1/projects/{seed['project']}/files/big.bin"

    def warm(server: Server) -> None:
        requests.put(server.url + path.replace("big", "warm"), data=b"w", headers={"x-authorization": seed["token"]})

    rows = {}
    # a fresh server for each memory figure: a process keeps memory it once grew to, which would hide the next growth
    for name in ["uvicorn"] + ([] if args.no_daphne else ["daphne"]):
        rows[name] = {}
        for kind in ("anonymous", "owner"):
            if kind == "owner" and name == "uvicorn":
                continue  # measured in the rounds below
            server = Server(name)
            try:
                warm(server)
                if kind == "anonymous":
                    rows[name][kind] = anonymous_upload(server, path)
                else:
                    rows[name][kind] = owner_upload(server, path, seed["token"], stored)
            finally:
                server.stop()
        print(name, json.dumps(rows[name]), flush=True)

    # rounds: dd, the platform's upload and the bare ceilings side by side, in an order that turns each round
    server = Server("uvicorn")
    ceilings = {}
    try:
        warm(server)
        for mode in CEILINGS:
            ceilings[mode] = Ceiling(mode, storage / ".staging")
        steps = {
            "dd": lambda: {"mb_s": dd(storage)},
            "platform": lambda: owner_upload(server, path, seed["token"], stored),
            **{mode: (lambda c=c: put(c.port, "/", {}, c.proc.pid)) for mode, c in ceilings.items()},
        }
        order = list(steps)
        rounds = []
        for i in range(args.rounds):
            turn = order[i % len(order) :] + order[: i % len(order)]
            rounds.append({name: steps[name]() for name in turn})
            print(f"round {i + 1}", json.dumps({k: round(v["mb_s"]) for k, v in rounds[-1].items()}), flush=True)
    finally:
        for c in ceilings.values():
            c.stop()
        server.stop()
    rows["uvicorn"]["owner"] = max((r["platform"] for r in rounds), key=lambda o: o["rss_growth"])
    result = {
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "size": SIZE,
        "load": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "servers": rows,
        "rounds": rounds,
        "median": {
            name: {k: statistics.median(r[name][k] for r in rounds) for k in rounds[0][name]} for name in rounds[0]
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "upload.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "upload.md").write_text(report(result))
    print(report(result))


def report(r: dict) -> str:
    mib = lambda n: f"{n / MiB:.0f} MiB"  # noqa: E731
    med, n = r["median"], len(r["rounds"])
    gib = SIZE / 1024**3
    dd_mb_s = med["dd"]["mb_s"]
    lines = [
        f"# Uploads ({r['when']})",
        "",
        f"Machine: {r['cpus']} CPUs, load average {r['load']:.1f} at the end (other work shares them).",
        "",
        "## Throughput beside dd",
        "",
        f"{n} rounds; each round runs, in an order that turns from round to round: `dd if=/dev/zero bs=1M",
        "count=2048 conv=fdatasync` into the storage folder; the project's owner uploading 2 GiB with",
        "PUT /api/v1/projects/<slug>/files/big.bin to the platform (`manage.py serve_web`, MB/s until the 201",
        "and including an fsync of the stored file); the same client sending 2 GiB to bare uvicorn apps with",
        "serve_web's flags (bench/upload_ceiling.py): drain (read and drop), file (written from the event",
        "loop), sha256 (hashed and written from the loop), thread (hashed and written by a worker thread, one",
        "hop per 4 MiB, the platform's shape). Client: http.client sending 1 MiB pieces over 127.0.0.1.",
        "MB = 10^6 bytes. CPU: seconds of user + system time per GiB.",
        "",
        "| | " + " | ".join(f"round {i + 1}" for i in range(n)) + " | median | server CPU s/GiB | client CPU s/GiB |",
        "|---|" + "---|" * (n + 3),
    ]

    def row(label: str, name: str, key: str = "mb_s") -> str:
        figures = " | ".join(f"{rnd[name][key]:.0f}" for rnd in r["rounds"])
        cpu = med[name]
        server = f"{cpu['server_cpu_s'] / gib:.2f}" if "server_cpu_s" in cpu else ""
        client = f"{cpu['client_cpu_s'] / gib:.2f}" if "client_cpu_s" in cpu else ""
        return f"| {label} | {figures} | **{med[name][key]:.0f}** | {server} | {client} |"

    lines += [
        row("dd, fdatasync (MB/s)", "dd"),
        row("platform upload (MB/s)", "platform"),
        row("platform upload with fsync (MB/s)", "platform", "synced_mb_s"),
        row("bare uvicorn: drain", "drain"),
        row("bare uvicorn: file", "file"),
        row("bare uvicorn: file + SHA-256", "sha256"),
        row("bare uvicorn: file + SHA-256 in a thread", "thread"),
        "",
        f"Platform upload with fsync / dd (medians): **{med['platform']['synced_mb_s'] / dd_mb_s:.0%}** "
        f"(target: at least 50%); per round: "
        + ", ".join(f"{rnd['platform']['synced_mb_s'] / rnd['dd']['mb_s']:.0%}" for rnd in r["rounds"])
        + ".",
        "",
        "## Memory",
        "",
        "RSS growth: the server process's peak VmHWM during the request minus its VmRSS before it. Anonymous:",
        "the client declares 2 GiB and sends until it is answered. Owner: the largest growth over the rounds",
        "(uvicorn) or one upload (daphne, the server served before, as the anchor). Target: under 64 MiB.",
        "",
        "| server | anonymous: answer | after | client had sent | RSS growth | owner: RSS growth | MB/s | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row_ in r["servers"].items():
        a, o = row_["anonymous"], row_["owner"]
        ok = a["rss_growth"] < TARGET_GROWTH and o["rss_growth"] < TARGET_GROWTH
        lines.append(
            f"| {name} | {a['status']} | {a['answer_s'] * 1000:.0f} ms | {mib(a['sent'])} | {mib(a['rss_growth'])} "
            f"| {mib(o['rss_growth'])} | {o['mb_s']:.0f} | {'met' if ok else 'missed'} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Upload benchmark: the web server's memory and throughput for 2 GiB uploads, beside `dd` on the same disk.

For the platform's server (uvicorn, `manage.py serve_web`) and, as the
anchor, daphne serving the same application: an anonymous client declares
and sends a 2 GiB PUT to the files API (the time until it is answered, how
much it had sent by then, and the server's RSS growth: peak VmHWM during the
request minus VmRSS before it, the peak reset through /proc/<pid>/clear_refs);
then the project's owner uploads 2 GiB (MB/s until the 201, and with an
fsync of the stored file, beside `dd bs=1M count=2048 conv=fdatasync` into
the same storage folder). Writes bench/results/upload.json and upload.md.

Runs on its own database, Redis db and data directory. `--no-daphne` skips
the anchor (it holds the whole body in memory: about 2 GB per upload).
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


def owner_upload(server: Server, path: str, token: str, stored: Path) -> dict:
    before = server.reset_peak()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=900)
    t0 = time.perf_counter()
    conn.request(
        "PUT",
        path,
        body=(PIECE for _ in range(SIZE // MiB)),
        headers={"Content-Length": str(SIZE), "x-authorization": token},
    )
    response = conn.getresponse()
    body = response.read()
    seconds = time.perf_counter() - t0
    conn.close()
    growth = server.status("VmHWM") - before
    if response.status != 201:
        raise RuntimeError(f"upload answered {response.status}: {body[:300]!r}")
    t1 = time.perf_counter()
    fd = os.open(stored, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    synced = seconds + time.perf_counter() - t1
    stored.unlink()
    return {"seconds": seconds, "mb_s": SIZE / seconds / 1e6, "synced_mb_s": SIZE / synced / 1e6, "rss_growth": growth}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-daphne", action="store_true", help="skip the daphne anchor")
    args = parser.parse_args()
    h.recreate_database()
    h.reset_data_dir()
    h.flush_redis()
    h.setup_django()
    seed = h.migrate_and_seed()
    from routines.models import Project

    project_pk = Project.objects.get(slug=seed["project"]).pk
    storage = h.DATA_DIR / "storage"
    path = f"/api/v1/projects/{seed['project']}/files/big.bin"
    rows = {}
    for name in ["uvicorn"] + ([] if args.no_daphne else ["daphne"]):
        rows[name] = {}
        # a fresh server for each upload: a process keeps memory it once grew to, which would hide the next growth
        for kind in ("anonymous", "owner"):
            server = Server(name)
            try:
                warm = server.url + path.replace("big", "warm")
                requests.put(warm, data=b"warm", headers={"x-authorization": seed["token"]}, timeout=30)
                if kind == "anonymous":
                    rows[name][kind] = anonymous_upload(server, path)
                else:
                    stored = storage / f"projects/{project_pk}/big.bin"
                    rows[name][kind] = owner_upload(server, path, seed["token"], stored)
            finally:
                server.stop()
        print(name, json.dumps(rows[name]), flush=True)
    load = os.getloadavg()[0]
    result = {
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "size": SIZE,
        "dd_mb_s": dd(storage),
        "load": load,
        "cpus": os.cpu_count(),
        "servers": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "upload.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "upload.md").write_text(report(result))
    print(report(result))


def report(r: dict) -> str:
    mib = lambda n: f"{n / MiB:.0f} MiB"  # noqa: E731
    lines = [
        f"# Uploads ({r['when']})",
        "",
        f"Machine: {r['cpus']} CPUs, load average {r['load']:.1f} at the end of the uploads (other work shares them).",
        "",
        "2 GiB PUT /api/v1/projects/<slug>/files/big.bin, client and server on 127.0.0.1. RSS growth: the",
        "server process's peak VmHWM during the request minus its VmRSS before it. Anonymous: the client",
        "declares 2 GiB and sends until it is answered. Owner: upload MB/s until the 201, and including an",
        "fsync of the stored file, beside `dd if=/dev/zero bs=1M count=2048 conv=fdatasync` into the same",
        f"storage folder: **{r['dd_mb_s']:.0f} MB/s** (MB = 10^6 bytes). Target: growth under 64 MiB, MB/s at",
        "least half of dd's.",
        "",
        "| server | anonymous: answer | after | client had sent | RSS growth | owner: RSS growth "
        "| MB/s | MB/s with fsync | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in r["servers"].items():
        a, o = row["anonymous"], row["owner"]
        ok = (
            a["rss_growth"] < TARGET_GROWTH and o["rss_growth"] < TARGET_GROWTH and o["synced_mb_s"] >= r["dd_mb_s"] / 2
        )
        lines.append(
            f"| {name} | {a['status']} | {a['answer_s'] * 1000:.0f} ms | {mib(a['sent'])} | {mib(a['rss_growth'])} "
            f"| {mib(o['rss_growth'])} | {o['mb_s']:.0f} | {o['synced_mb_s']:.0f} | {'met' if ok else 'missed'} |"
        )
    lines += ["", "uvicorn is the platform's server (`manage.py serve_web`); daphne, served before, is the anchor.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Xet benchmark: `accli copy` of 256 MiB files up to and down from a project, beside `cp` on the same disk.

The platform's web server (`manage.py serve_web`, uvicorn) runs on its own
database (accelerator_bench_xet), Redis db (12) and data directory
(var/bench-xet). The real client (.venv/bin/accli, hf_xet inside) logs in as
the bench user through the web login form and /acli-auth-code with a fresh
HOME before every copy that must move data, and every upload sends a file the
server has never seen (random bytes from a fixed seed per round and variant),
so neither the client's cache nor the server's dedupe helps. Each round, in an
order that turns from round to round:

- up: `accli copy big.bin acc://bench/bench/<name>` through a TCP relay that
  counts the bytes each way (tests/xet_proxy.py), the same straight to the
  server, and `cp` into the project's storage folder;
- down: `accli copy acc://bench/bench/<name> <fresh file>` (relayed, direct;
  SHA-256 checked) and `cp` of the stored copy to a fresh local file;
- then the relayed upload's HOME uploads the same file again (dedupe): bytes
  sent and seconds.

Both sides are timed until the command exits (page cache, no fsync), and again
including an fsync of every file the step wrote (accli upload: the stored file
and the new xorb files). During each accli copy the server's RSS before and
its peak are read from /proc/<pid>/status (VmRSS; VmHWM after resetting it
through clear_refs), for the server process and any children; CPU seconds of
the server, accli and the relay too. Writes bench/results/xet.json and xet.md
(also when a step fails: the error is in both, exit code 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402

h.BENCH_DB = os.environ.get("ACC_BENCH_XET_DB", "accelerator_bench_xet")
h.DB_URL = f"{h.PG}/{h.BENCH_DB}"
h.REDIS_URL = os.environ.get("ACC_BENCH_XET_REDIS_URL", "redis://127.0.0.1:6379/12")
h.DATA_DIR = h.ROOT / "var" / "bench-xet"
_platform_env = h.platform_env
h.platform_env = lambda **extra: _platform_env(**{"ACC_INSTANCE": "bench-xet", **extra})

sys.path.insert(0, str(h.ROOT))
from tests.xet_proxy import CountingRelay  # noqa: E402

RESULTS = h.ROOT / "bench" / "results"
ACCLI = str(Path(h.PY).parent / "accli")
MiB = 1024 * 1024
SIZE = 256 * MiB
SEED = 20261204
PASSWORD = "bench-password-123"
TARGET_PEAK = 200 * 10**6  # bytes: 200 MB, 191 MiB


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(h.ROOT), *args], capture_output=True, text=True).stdout.rstrip("\n")


# --- the server's memory ---------------------------------------------------------------
def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").iterdir():
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


class Memory:
    """RSS before, and the peak (VmHWM after a clear_refs reset) of the server and its children during a step.

    A thread also samples the server process's VmRSS every 50 ms, beside `counter()` (the bytes the relay has
    passed so far, for relayed copies): when the RSS grows while few bytes have left, the server holds them.
    """

    def __init__(self, pid: int, counter=None):
        self.pid = pid
        self.counter = counter or (lambda: 0)
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()

    def _sample(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.wait(0.05):
            self.samples.append((round(time.perf_counter() - t0, 3), _status(self.pid, "VmRSS"), self.counter()))

    def __enter__(self):
        self.pids = _tree(self.pid)
        self.before = {}
        for p in self.pids:
            Path(f"/proc/{p}/clear_refs").write_text("5")
            self.before[p] = _status(p, "VmRSS")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        pids = _tree(self.pid)
        self.row = {
            "processes": len(pids),
            "rss_before": sum(self.before.get(p, 0) for p in pids),
            # a child that started during the step has its whole life's peak here
            "rss_peak": sum(_status(p, "VmHWM") for p in pids),
            "server_rss_before": self.before[self.pid],
            "server_rss_peak": _status(self.pid, "VmHWM"),
        }
        self.row["growth"] = self.row["rss_peak"] - self.row["rss_before"]
        if self.samples:
            t, rss, passed = max(self.samples, key=lambda x: x[1])
            # the largest sampled RSS: when, and how many bytes the relay had passed by then
            self.row["sampled_peak"] = {"at_s": t, "rss": rss, "relay_bytes_by_then": passed}
        self.row["samples"] = [[t, round(rss / MiB, 1), round(passed / MiB, 1)] for t, rss, passed in self.samples]
        return False


# --- the client --------------------------------------------------------------------------
def web_code(base_url: str, username: str, password: str) -> str:
    """Sign in through the web login form and read the code off /acli-auth-code (as a user would)."""
    import re

    s = requests.Session()
    s.get(f"{base_url}/accounts/login/")
    r = s.post(
        f"{base_url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": s.cookies["csrftoken"], "next": "/"},
    )
    if r.status_code != 200 or "Sign out" not in r.text:
        raise RuntimeError(f"web login failed: {r.status_code}")
    page = s.get(f"{base_url}/acli-auth-code")
    return re.search(r'id="acli-code">([^<]+)<', page.text).group(1).strip()


def login(home: Path, server_url: str, client_url: str) -> Path:
    """A fresh HOME with accli logged in against `client_url` (the relay)."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    done = subprocess.run(
        [ACCLI, "login", "-s", client_url, "-c", client_url],
        input=web_code(server_url, "bench", PASSWORD) + "\n",
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    if done.returncode != 0 or "Successfully logged in" not in done.stdout:
        raise RuntimeError(f"accli login failed:\n{done.stdout}\n{done.stderr}")
    return home


def accli_copy(home: Path, source: str, destination: str) -> float:
    """Seconds until `accli copy source destination` exits; raises unless it exits 0."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [ACCLI, "copy", source, destination],
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        timeout=900,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"accli copy {source} {destination} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return seconds


def fsync_files(paths: list[Path]) -> float:
    t0 = time.perf_counter()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return time.perf_counter() - t0


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(4 * MiB):
            digest.update(data)
    return digest.hexdigest()


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def figures(seconds: float, synced: float) -> dict:
    return {
        "seconds": seconds,
        "mb_s": SIZE / seconds / 1e6,
        "synced_seconds": synced,
        "synced_mb_s": SIZE / synced / 1e6,
    }


# --- main --------------------------------------------------------------------------------
def make_file(path: Path, seed: int) -> str:
    """SIZE random bytes from `seed`, written and fsynced; their SHA-256."""
    rng, digest = random.Random(seed), hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(SIZE // MiB):
            piece = rng.randbytes(MiB)
            digest.update(piece)
            fh.write(piece)
        fh.flush()
        os.fsync(fh.fileno())
    return digest.hexdigest()


def cpu_tree(pid: int) -> float:
    """User + system CPU seconds of the server process and its children (threads included)."""
    total = 0.0
    for p in _tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Cpu:
    """CPU seconds during a step: the server (and children), accli (reaped children of this process), the relay."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        self.server = cpu_tree(self.pid)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.client = ru.ru_utime + ru.ru_stime
        self.own = time.process_time()
        return self

    def __exit__(self, *exc):
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.row = {
            "server_cpu_s": cpu_tree(self.pid) - self.server,
            "accli_cpu_s": ru.ru_utime + ru.ru_stime - self.client,
            "relay_cpu_s": time.process_time() - self.own,
        }
        return False


def changed_since(folder: Path, t0: float) -> list[Path]:
    return sorted(p for p in files_under(folder) if p.stat().st_mtime >= t0)


def one_round(i: int, *, server: h.WebServer, relay: CountingRelay, slug: str, project_dir: Path, client: Path) -> dict:
    """One round: three uploads and three downloads in a turning order, then the dedupe upload."""
    xorbs = h.DATA_DIR / "storage" / "xet"
    n = i + 1
    row: dict = {}
    homes: dict = {}
    # one file per upload (seed SEED + 10 n + 1 for the relayed upload, + 2 for the direct one), so that
    # every upload stores new xorbs and neither the server's nor the client's dedupe can help
    sources = {via: (client / f"big-{n}-{via}.bin", SEED + 10 * n + k) for k, via in ((1, "relay"), (2, "direct"))}
    digests = {via: make_file(path, s) for via, (path, s) in sources.items()}

    def accli_up(via: str) -> None:
        path = sources[via][0]
        home = login(client / f"home-up-{n}-{via}", server.url, relay.url if via == "relay" else server.url)
        homes[via] = home
        step = "accli_up" if via == "relay" else "accli_up_direct"
        relay.reset()
        row[f"load_{step}"] = load()
        t0 = time.time()
        with Memory(server.proc.pid, lambda: relay.up) as mem, Cpu(server.proc.pid) as cpu:
            seconds = accli_copy(home, str(path), f"acc://{slug}/bench/{path.name}")
        sent, received = relay.up, relay.down
        stored = project_dir / f"bench/{path.name}"
        new_xorbs = changed_since(xorbs, t0)
        synced = seconds + fsync_files([stored, *new_xorbs])
        if sha256_of(stored) != digests[via]:
            raise RuntimeError(f"the stored bench/{path.name} differs from the original")
        row[step] = {
            **figures(seconds, synced),
            "new_xorb_files": len(new_xorbs),
            "new_xorb_bytes": sum(p.stat().st_size for p in new_xorbs),
            **cpu.row,
            "memory": mem.row,
        }
        if via == "relay":
            row[step] |= {"bytes_to_server": sent, "bytes_from_server": received}

    def accli_down(via: str) -> None:
        name = sources[via][0].name
        home = login(client / f"home-down-{n}-{via}", server.url, relay.url if via == "relay" else server.url)
        step = "accli_down" if via == "relay" else "accli_down_direct"
        target = client / f"down-{n}-{via}.bin"
        target.unlink(missing_ok=True)
        relay.reset()
        row[f"load_{step}"] = load()
        with Memory(server.proc.pid, lambda: relay.down) as mem, Cpu(server.proc.pid) as cpu:
            seconds = accli_copy(home, f"acc://{slug}/bench/{name}", str(target))
        sent, received = relay.up, relay.down
        synced = seconds + fsync_files([target])
        ok = sha256_of(target) == digests[via]
        if not ok:
            raise RuntimeError(f"the downloaded {target.name} differs from the original")
        target.unlink()
        row[step] = {**figures(seconds, synced), "sha256_ok": ok, **cpu.row, "memory": mem.row}
        if via == "relay":
            row[step] |= {"bytes_to_server": sent, "bytes_from_server": received}

    def cp_up() -> None:
        target = project_dir / f"bench/cp-{n}.bin"
        target.parent.mkdir(parents=True, exist_ok=True)
        row["load_cp_up"] = load()
        t0 = time.perf_counter()
        subprocess.run(["cp", str(sources["direct"][0]), str(target)], check=True)
        seconds = time.perf_counter() - t0
        row["cp_up"] = figures(seconds, seconds + fsync_files([target]))

    def cp_down() -> None:
        target = client / f"cp-down-{n}.bin"
        target.unlink(missing_ok=True)
        row["load_cp_down"] = load()
        t0 = time.perf_counter()
        subprocess.run(["cp", str(project_dir / f"bench/cp-{n}.bin"), str(target)], check=True)
        seconds = time.perf_counter() - t0
        row["cp_down"] = figures(seconds, seconds + fsync_files([target]))
        target.unlink()

    def dedupe() -> None:
        path = sources["relay"][0]
        relay.reset()
        row["load_dedupe"] = load()
        with Memory(server.proc.pid) as mem, Cpu(server.proc.pid) as cpu:
            seconds = accli_copy(homes["relay"], str(path), f"acc://{slug}/bench/again-{n}.bin")
        row["dedupe"] = {
            "seconds": seconds,
            "bytes_to_server": relay.up,
            "bytes_from_server": relay.down,
            **cpu.row,
            "memory": mem.row,
        }
        if sha256_of(project_dir / f"bench/again-{n}.bin") != digests["relay"]:
            raise RuntimeError(f"the stored bench/again-{n}.bin differs from the original")

    ups = [("accli relay up", lambda: accli_up("relay")), ("accli direct up", lambda: accli_up("direct"))]
    ups.append(("cp up", cp_up))
    downs = [
        ("accli relay down", lambda: accli_down("relay")),
        ("accli direct down", lambda: accli_down("direct")),
        ("cp down", cp_down),
    ]
    ups, downs = ups[i % 3 :] + ups[: i % 3], downs[i % 3 :] + downs[: i % 3]
    row["order"] = [name for name, _ in ups + downs] + ["dedupe"]
    for _, step in ups + downs:
        step()
    dedupe()
    for p in [*files_under(project_dir / "bench"), *(path for path, _ in sources.values())]:
        if p.name != "warm.txt":
            p.unlink()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args()
    started = {
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_modified": [
            line[3:]
            for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
            if line[3:] and not line[3:].startswith(("bench/", "scripts/bench.sh"))
        ],
        "cpus": os.cpu_count(),
        "loadavg_start": load(),
        "size": SIZE,
        "seed": SEED,
    }
    h.recreate_database()
    h.reset_data_dir()
    h.flush_redis()
    h.setup_django()
    seed = h.migrate_and_seed()
    from routines.models import Project

    slug = seed["project"]
    project_dir = h.DATA_DIR / "storage" / f"projects/{Project.objects.get(slug=slug).pk}"
    client = h.DATA_DIR / "client"
    client.mkdir(parents=True)

    server = h.WebServer()
    relay = None
    rounds: list[dict] = []
    error = None
    try:
        server.wait_ready(60)
        relay = CountingRelay("127.0.0.1", server.port)
        # warm the server (imports, first queries) with a small copy, not measured
        warm = client / "warm.txt"
        warm.write_text("warm\n")
        accli_copy(login(client / "home-warm", server.url, relay.url), str(warm), f"acc://{slug}/bench/warm.txt")

        for i in range(args.rounds):
            n = i + 1
            row = one_round(i, server=server, relay=relay, slug=slug, project_dir=project_dir, client=client)
            rounds.append(row)
            print(
                f"round {n}",
                json.dumps(
                    {k: round(row[k]["mb_s"]) for k in STEPS}
                    | {
                        f"{k}_peak_MiB": round(row[k]["memory"]["rss_peak"] / MiB)
                        for k in ("accli_up", "accli_up_direct", "accli_down", "accli_down_direct")
                    }
                    | {
                        "up_sent_MiB": round(row["accli_up"]["bytes_to_server"] / MiB, 1),
                        "dedupe_sent_KiB": round(row["dedupe"]["bytes_to_server"] / 1024, 1),
                    }
                ),
                flush=True,
            )
    except Exception as exc:  # the partial results are written with the error
        error = f"{type(exc).__name__}: {exc}"
        print(error, file=sys.stderr)
    finally:
        if relay is not None:
            relay.close()
        server.stop()
    result = {**started, "loadavg_end": load(), "rounds": rounds, "error": error, "median": medians(rounds)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "xet.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "xet.md").write_text(report(result))
    print(report(result))
    sys.exit(1 if error else 0)


STEPS = ("accli_up", "accli_up_direct", "cp_up", "accli_down", "accli_down_direct", "cp_down")


def medians(rounds: list[dict]) -> dict:
    if not rounds:
        return {}
    med: dict = {}
    for step in (*STEPS, "dedupe"):
        med[step] = {
            k: statistics.median(r[step][k] for r in rounds)
            for k, v in rounds[0][step].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if "memory" in rounds[0][step]:
            med[step]["memory"] = {
                k: statistics.median(r[step]["memory"][k] for r in rounds)
                for k, v in rounds[0][step]["memory"].items()
                if isinstance(v, int)
            }
            med[step]["memory"]["max_rss_peak"] = max(r[step]["memory"]["rss_peak"] for r in rounds)
    return med


def report(r: dict) -> str:
    mib = lambda n: f"{n / MiB:.0f} MiB"  # noqa: E731
    med, rounds, n = r["median"], r["rounds"], len(r["rounds"])
    modified = f" plus uncommitted changes in {', '.join(r['git_modified'])}" if r["git_modified"] else ""
    lines = [
        f"# Xet copies with accli ({r['when']})",
        "",
        f"- code: commit {r['git_commit']}{modified}",
        f"- machine: {r['cpus']} CPUs, load average {r['loadavg_start']} at the start, {r['loadavg_end']} at the end"
        " (other work shares the machine)",
        f"- files: {mib(r['size'])} of random bytes, one per upload (seeds {r['seed']} + 10 round + 1 or 2);"
        f" MB = 10^6 bytes; {n} rounds, medians in bold",
    ]
    if r["error"]:
        lines += ["", f"**ERROR**: {r['error']}"]
    if not rounds:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "## Throughput beside cp",
        "",
        "Each round runs, in an order that turns from round to round, three uploads: `accli copy big.bin",
        "acc://bench/bench/big.bin` through a byte-counting TCP relay (tests/xet_proxy.py, Python threads in the",
        "bench process), the same straight to the server, and `cp big.bin` into the project's storage folder;",
        "then three downloads in the same turning order: `accli copy acc://bench/bench/big.bin <fresh file>`",
        "(relayed, direct; SHA-256 checked after the clock stops) and `cp` of the stored copy to a fresh local",
        "file. Every accli copy runs with a fresh HOME, logged in just before through the web login form, so",
        "no client cache helps; every upload sends a file the server has never seen. Client, server and",
        "storage share one disk. 'exit': seconds until the command exits 0 (page cache, nothing fsynced, on",
        "both sides); 'fsync': plus an fsync of every file the step wrote (accli upload: the stored file and",
        "the new xorb files; the others: the destination file). Ratio: accli median / cp median.",
        "",
        "| MB/s | " + " | ".join(f"round {i + 1}" for i in range(n)) + " | median | accli / cp |",
        "|---|" + "---|" * (n + 2),
    ]

    def row(label: str, step: str, key: str, anchor: str | None) -> str:
        cells = " | ".join(f"{rnd[step][key]:.0f}" for rnd in rounds)
        ratio = f"{med[step][key] / med[anchor][key]:.0%}" if anchor else ""
        return f"| {label} | {cells} | **{med[step][key]:.0f}** | {ratio} |"

    for key, what in (("mb_s", "exit"), ("synced_mb_s", "fsync")):
        lines += [
            row(f"accli upload, direct ({what})", "accli_up_direct", key, "cp_up"),
            row(f"accli upload, relayed ({what})", "accli_up", key, "cp_up"),
            row(f"cp into storage ({what})", "cp_up", key, None),
            row(f"accli download, direct ({what})", "accli_down_direct", key, "cp_down"),
            row(f"accli download, relayed ({what})", "accli_down", key, "cp_down"),
            row(f"cp from storage ({what})", "cp_down", key, None),
        ]
    lines += [
        "",
        "CPU seconds per accli copy (medians): server (serve_web and children) / accli / relay (bench process):",
        "; ".join(
            f"{label} {med[step]['server_cpu_s']:.1f} / {med[step]['accli_cpu_s']:.1f} / {med[step]['relay_cpu_s']:.1f}"
            for step, label in (
                ("accli_up_direct", "upload direct"),
                ("accli_up", "upload relayed"),
                ("accli_down_direct", "download direct"),
                ("accli_down", "download relayed"),
            )
        )
        + ".",
        "",
        "Load average (1 min) at the start of each step:",
        "",
    ]
    for i, rnd in enumerate(rounds):
        loads = ", ".join(f"{k[5:]} {v[0]}" for k, v in rnd.items() if k.startswith("load_"))
        lines.append(f"- round {i + 1} (order: {', '.join(rnd['order'])}): {loads}")
    lines += [
        "",
        "## Bytes that reached the server",
        "",
        "Relayed copies: counted by the relay (client → server, server → client). All uploads: the xorb files",
        "the server wrote during the upload (its storage's `xet/` folder, files modified since the step began).",
        "",
        "| round | relayed upload: to server | from server | new xorbs | direct upload: new xorbs "
        "| relayed download: to server | from server | SHA-256 (both downloads) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, rnd in enumerate(rounds):
        up, upd, down = rnd["accli_up"], rnd["accli_up_direct"], rnd["accli_down"]
        same = down["sha256_ok"] and rnd["accli_down_direct"]["sha256_ok"]
        lines.append(
            f"| {i + 1} | {up['bytes_to_server'] / MiB:.1f} MiB | {up['bytes_from_server'] / 1024:.0f} KiB "
            f"| {up['new_xorb_files']} files, {up['new_xorb_bytes'] / MiB:.1f} MiB "
            f"| {upd['new_xorb_files']} files, {upd['new_xorb_bytes'] / MiB:.1f} MiB "
            f"| {down['bytes_to_server'] / 1024:.0f} KiB | {down['bytes_from_server'] / MiB:.1f} MiB "
            f"| {'equal' if same else 'DIFFERENT'} |"
        )
    lines += [
        "",
        "## Second upload of the same file from the same HOME (dedupe)",
        "",
        "After the round's copies, the relayed upload's HOME uploads the same file again to a new path",
        "(`acc://bench/bench/again-<n>.bin`, through the relay; the stored file is checked).",
        "",
        "| round | seconds | to server | from server |",
        "|---|---|---|---|",
    ]
    for i, rnd in enumerate(rounds):
        d = rnd["dedupe"]
        lines.append(
            f"| {i + 1} | {d['seconds']:.2f} | {d['bytes_to_server'] / 1024:.1f} KiB "
            f"| {d['bytes_from_server'] / 1024:.1f} KiB |"
        )
    memory_steps = (
        ("accli_up_direct", "upload, direct"),
        ("accli_up", "upload, relayed"),
        ("accli_down_direct", "download, direct"),
        ("accli_down", "download, relayed"),
        ("dedupe", "dedupe upload"),
    )
    worst = max(rnd[s]["memory"]["rss_peak"] for rnd in rounds for s, _ in memory_steps)
    lines += [
        "",
        "## The server's memory",
        "",
        "The `manage.py serve_web` process and its children (the number of processes is in the last column):",
        "RSS before the step (VmRSS, after resetting the peak with `echo 5 > /proc/<pid>/clear_refs`), the peak",
        "during it (VmHWM) and the growth. One server for the whole run, so a step starts from whatever the",
        "earlier ones left the process holding. Target: peak under 200 MB (191 MiB).",
        "",
        "| round | step | RSS before | peak | growth | processes | peak < 200 MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, rnd in enumerate(rounds):
        for step, label in memory_steps:
            m = rnd[step]["memory"]
            lines.append(
                f"| {i + 1} | {label} | {mib(m['rss_before'])} | {mib(m['rss_peak'])} | {mib(m['growth'])} "
                f"| {m['processes']} | {'yes' if m['rss_peak'] < TARGET_PEAK else 'NO'} |"
            )
    lines += [
        "",
        "The server's VmRSS sampled every 50 ms during the relayed copies: the largest sample, when, and how many",
        "bytes the relay had passed by then (the whole series is in xet.json, `samples`: seconds, RSS MiB,",
        "relay MiB):",
        "",
    ]
    for i, rnd in enumerate(rounds):
        for step, label in (("accli_up", "upload"), ("accli_down", "download")):
            peak = rnd[step]["memory"].get("sampled_peak")
            if peak:
                lines.append(
                    f"- round {i + 1}, relayed {label} ({rnd[step]['seconds']:.1f} s): {mib(peak['rss'])} at "
                    f"{peak['at_s']:.1f} s, when {mib(peak['relay_bytes_by_then'])} of {mib(r['size'])} had passed"
                )
    lines += [
        "",
        f"Largest peak: **{mib(worst)}** ({worst / 1e6:.0f} MB): {'met' if worst < TARGET_PEAK else 'MISSED'} "
        "(target under 200 MB).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

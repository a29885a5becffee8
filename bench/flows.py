"""Jobflow benchmark: edge latency on a 100-node chain and a 1 -> 50 -> 1 fan-out/fan-in, on `local`.

Edge latency is the time from a parent's finished_at to its child's running_at,
both stamped by the platform on the same clock. Writes bench/results/flows.json
and flows.md. The build-system cache figures (cache hit, fresh vs reused) come
with the cache.
"""

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402

RESULTS = h.ROOT / "bench" / "results"
LAYOUT = {
    "key": "flows",
    "processes": 2,
    "pool": "threads",
    "concurrency": 4,
    "describe": "2 workers, each -P threads -c 4",
}
TARGETS = {"edge_median_ms": 30.0, "chain_total_s": 5.0}


def node(node_id: str) -> dict:
    return {
        "id": node_id,
        "name": node_id,
        "timeout": 60,
        "required_cores": 0.1,
        "job_kwargs": {"docker_image": h.IMAGE, "command": "true"},
    }


def chain(n: int) -> dict:
    ids = [f"n{i:03d}" for i in range(n)]
    return {
        "format": "acc-dag/1",
        "name": f"chain-{n}",
        "nodes": [node(i) for i in ids],
        "edges": [[a, b] for a, b in zip(ids, ids[1:], strict=False)],
    }


def fan(width: int) -> dict:
    mids = [f"m{i:02d}" for i in range(width)]
    return {
        "format": "acc-dag/1",
        "name": f"fan-{width}",
        "nodes": [node("src"), *map(node, mids), node("sink")],
        "edges": [["src", m] for m in mids] + [[m, "sink"] for m in mids],
    }


def run_flow(api: h.Api, dag: dict, timeout: float) -> dict:
    from workers.models import Job

    t0 = time.time()
    root_id = api.dispatch(dag)
    status, _ = api.wait_final(root_id, timeout=timeout, interval=0.05)
    nodes = {
        j["node_key"]: j
        for j in Job.objects.filter(flow_run__root_id=root_id).values(
            "node_key", "status", "running_at", "finished_at", "created_at"
        )
    }
    edges = []
    for before, after in dag["edges"]:
        a, b = nodes[before], nodes[after]
        if a["finished_at"] and b["running_at"]:
            edges.append((b["running_at"] - a["finished_at"]).total_seconds())
    first = min(n["running_at"] for n in nodes.values() if n["running_at"])
    last = max(n["finished_at"] for n in nodes.values() if n["finished_at"])
    return {
        "root": root_id,
        "status": status,
        "nodes": len(nodes),
        "succeeded": sum(n["status"] == "SUCCEEDED" for n in nodes.values()),
        "edge_latency_ms": h.summary(edges),
        "first_running_to_last_finished_s": round((last - first).total_seconds(), 3),
        "call_to_final_s": round(time.time() - t0, 3),
    }


def fan_in_latency(api: h.Api, res: dict) -> float | None:
    """For the fan: the last middle node's finish -> the sink running."""
    from workers.models import Job

    jobs = {j.node_key: j for j in Job.objects.filter(flow_run__root_id=res["root"])}
    last_mid = max(j.finished_at for k, j in jobs.items() if k.startswith("m"))
    return round((jobs["sink"].running_at - last_mid).total_seconds() * 1000, 1)


def markdown(res: dict) -> str:
    c, f = res["chain"], res["fan"]
    rows = [
        (
            "chain of 100: edge latency, median",
            f"{c['edge_latency_ms']['median']} ms",
            "<= 30 ms",
            c["edge_latency_ms"]["median"] <= TARGETS["edge_median_ms"],
        ),
        ("chain of 100: edge latency, p95", f"{c['edge_latency_ms']['p95']} ms", "", None),
        (
            "chain of 100: first node running -> last finished",
            f"{c['first_running_to_last_finished_s']} s",
            "<= 5 s",
            c["first_running_to_last_finished_s"] <= TARGETS["chain_total_s"],
        ),
        ("chain of 100: dispatch call -> root final (incl. polling)", f"{c['call_to_final_s']} s", "", None),
        ("1 -> 50 -> 1: first running -> last finished", f"{f['first_running_to_last_finished_s']} s", "", None),
        (
            "1 -> 50 -> 1: edge latency median / p95",
            f"{f['edge_latency_ms']['median']} / {f['edge_latency_ms']['p95']} ms",
            "",
            None,
        ),
        ("1 -> 50 -> 1: last middle finished -> sink running", f"{f['fan_in_ms']} ms", "", None),
    ]
    lines = [
        "# Jobflow benchmark",
        "",
        f"- date: {res['date']}; machine: {res['machine']}; workers: {LAYOUT['describe']}; backend: local",
        f"- command: `{res['command']}`; every node is `true`",
        "",
        "| figure | value | target | result |",
        "|---|---|---|---|",
    ]
    for name, value, target, ok in rows:
        verdict = "" if ok is None else ("PASS" if ok else "**FAIL**")
        lines.append(f"| {name} | {value} | {target} | {verdict} |")
    lines += ["", f"All nodes succeeded: chain {c['succeeded']}/{c['nodes']}, fan {f['succeeded']}/{f['nodes']}.", ""]
    return "\n".join(lines)


def main() -> int:
    res = {
        "benchmark": "flows",
        "command": "make bench: .venv/bin/python bench/flows.py",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
    }
    web, workers = None, []
    try:
        h.reset_data_dir()
        h.flush_redis()
        h.recreate_database()
        h.setup_django()
        seed = h.migrate_and_seed()
        web = h.WebServer()
        web.wait_ready()
        api = h.Api(web.url, seed["token"], seed["project"])
        workers = h.start_workers(LAYOUT, "local")
        run_flow(api, chain(5), 60)  # warm-up
        res["chain"] = run_flow(api, chain(100), 120)
        res["fan"] = run_flow(api, fan(50), 120)
        res["fan"]["fan_in_ms"] = fan_in_latency(api, res["fan"])
    finally:
        h.stop_all(workers)
        if web is not None:
            web.stop()
        h.flush_redis()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "flows.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    md = markdown(res)
    (RESULTS / "flows.md").write_text(md)
    print(md, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

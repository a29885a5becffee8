"""Jobflow benchmark: edge latency on a 100-node chain and a 1 -> 50 -> 1 fan-out/fan-in, on `local`.

Edge latency is the time from a parent's finished_at to its child's running_at,
both stamped by the platform on the same clock. The build-system cache adds:
the dispatch call of an already-built job (a cache hit), and a 20-node flow run
fresh, then dispatched again and answered wholly from the cache. Writes
bench/results/flows.json and flows.md.
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
TARGETS = {"edge_median_ms": 30.0, "chain_total_s": 5.0, "cache_hit_median_ms": 25.0}
CACHE_HITS = 100


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


def layered(widths: list[int]) -> dict:
    """Layers of nodes, each node after every node of the layer before; each leaves a file in the pipe."""
    layers = [[f"l{i}n{j}" for j in range(w)] for i, w in enumerate(widths)]
    nodes = []
    for layer in layers:
        for node_id in layer:
            spec = node(node_id)
            spec["job_kwargs"]["command"] = f'echo {node_id} > "$ACC_PIPE_DIR/{node_id}.txt"'
            nodes.append(spec)
    edges = [[a, b] for up, down in zip(layers, layers[1:], strict=False) for a in up for b in down]
    return {"format": "acc-dag/1", "name": "layered", "nodes": nodes, "edges": edges}


def cache_hits(api: h.Api) -> dict:
    """Dispatch an already-built job again and again: each call returns a finished, reused job."""
    task = h.fresh_task(h.trivial_task())
    first = api.dispatch(task, fresh=False)
    api.wait_final(first, timeout=60)
    seconds, reused = [], 0
    for _ in range(CACHE_HITS):
        t0 = time.perf_counter()
        job_id = api.dispatch(task, fresh=False)
        seconds.append(time.perf_counter() - t0)
        body = api.job(job_id)
        reused += body["status"] == "SUCCEEDED" and body["reused_from"] == first
    return {"dispatch_ms": h.summary(seconds), "calls": CACHE_HITS, "answered_from_cache": reused}


def fresh_vs_reused(api: h.Api) -> dict:
    from jobs.models import Job

    dag = h.fresh_task(layered([1, 6, 6, 6, 1]))
    fresh = run_flow(api, dag, 120, fresh=False)
    again = run_flow(api, dag, 120, fresh=False)
    reused = Job.objects.filter(flow_run__root_id=again["root"], reused_from__isnull=False).count()
    return {"nodes": fresh["nodes"], "fresh": fresh, "reused": again, "reused_nodes": reused}


def run_flow(api: h.Api, dag: dict, timeout: float, *, fresh: bool = True) -> dict:
    from jobs.models import Job

    t0 = time.time()
    root_id = api.dispatch(dag, fresh=fresh)
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
    first = min((n["running_at"] for n in nodes.values() if n["running_at"]), default=None)
    last = max(n["finished_at"] for n in nodes.values() if n["finished_at"])
    return {
        "root": root_id,
        "status": status,
        "nodes": len(nodes),
        "succeeded": sum(n["status"] == "SUCCEEDED" for n in nodes.values()),
        "edge_latency_ms": h.summary(edges),
        "first_running_to_last_finished_s": round((last - first).total_seconds(), 3) if first else None,
        "call_to_final_s": round(time.time() - t0, 3),
    }


def fan_in_latency(api: h.Api, res: dict) -> float | None:
    """For the fan: the last middle node's finish -> the sink running."""
    from jobs.models import Job

    jobs = {j.node_key: j for j in Job.objects.filter(flow_run__root_id=res["root"])}
    last_mid = max(j.finished_at for k, j in jobs.items() if k.startswith("m"))
    return round((jobs["sink"].running_at - last_mid).total_seconds() * 1000, 1)


def markdown(res: dict) -> str:
    c, f, hit, tw = res["chain"], res["fan"], res["cache_hit"], res["twenty"]
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
        (
            f"cache hit: dispatch call of an already-built job, median ({hit['calls']} calls)",
            f"{hit['dispatch_ms']['median']} ms",
            "<= 25 ms",
            hit["dispatch_ms"]["median"] <= TARGETS["cache_hit_median_ms"],
        ),
        ("cache hit: dispatch call, p95", f"{hit['dispatch_ms']['p95']} ms", "", None),
        ("cache hit: calls answered from the cache", f"{hit['answered_from_cache']}/{hit['calls']}", "all", None),
        ("20-node flow, fresh: dispatch call -> root final", f"{tw['fresh']['call_to_final_s']} s", "", None),
        (
            "20-node flow, fully reused: dispatch call -> root final",
            f"{tw['reused']['call_to_final_s']} s ({tw['reused_nodes']}/{tw['nodes']} nodes reused)",
            "",
            None,
        ),
    ]
    lines = [
        "# Jobflow benchmark",
        "",
        f"- date: {res['date']}; machine: {res['machine']}; workers: {LAYOUT['describe']}; backend: local",
        f"- command: `{res['command']}`",
        "- chain and fan nodes run `true`; each node of the 20-node flow writes one file to the pipe",
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
        res["cache_hit"] = cache_hits(api)
        res["twenty"] = fresh_vs_reused(api)
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

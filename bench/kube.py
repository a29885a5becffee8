"""Kubernetes benchmark (issue 15, "What it must show" 2), on the test cluster of `scripts/cluster.sh`.

- latency: a trivial job (`true`, busybox) dispatched through the API, N times one after the other: seconds
  from the dispatch call until its pod's command runs (the job's running_at) and until the job is SUCCEEDED;
  beside the same pod (the backend's own manifest, image by digest from the registry) created directly with
  the `kubernetes` client: create -> command running, create -> ended. The ratio of medians is the figure
  (target <= 1.3).
- many: 100 `sleep 30` jobs dispatched at once with ONE worker (-P threads -c 4) and the supervisor: all RUNNING
  together? seconds from the first dispatch until all ran; all SUCCEEDED with their logs.
- many_direct: its anchor, the same 100 pods created at once with the client: all running together? seconds
  from the first create until all ran (how fast the node starts pods bounds both).

Own database (accelerator_bench_kube), Redis db 13, data dir var/bench-kube, job ids from 1 800 000 000,
ACC_INSTANCE=bench-kube (its pods are labelled so; they are deleted at the start and the end). Needs KUBECONFIG
and ACC_K8S_REGISTRY (scripts/bench.sh exports them from `scripts/cluster.sh up`). Writes
bench/results/kube.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402
import scale as s  # noqa: E402  (its helpers: dispatching, waiting, counting, sampling; they read h.* at call time)

h.BENCH_DB = "accelerator_bench_kube"
h.DB_URL = f"{h.PG}/{h.BENCH_DB}"
h.REDIS_URL = "redis://127.0.0.1:6379/13"
h.DATA_DIR = h.ROOT / "var" / "bench-kube"
h.JOB_ID_START = 1_800_000_000
INSTANCE = "bench-kube"
DIRECT = "bench-kube-direct"  # the label of pods made without the platform: its supervisor and reconciler ignore them
_labelled_env = h.platform_env  # scale's: the application_name of each process, for pg_stat_activity


def platform_env(**extra: str) -> dict:
    env = {"ACC_INSTANCE": INSTANCE, "ACC_K8S_PIPE_HOST_DIR": str(h.DATA_DIR / "pipes"), **extra}
    env.setdefault("ACC_K8S_HELPER_IMAGE", os.environ.get("ACC_K8S_HELPER_IMAGE", "acc-test/busybox:latest"))
    # 100 one-core jobs on a 2-core node: the pods request 1% of their cores and RAM (limits stay whole)
    env.setdefault("ACC_K8S_REQUEST_FRACTION", "0.01")
    return _labelled_env(**env)


h.platform_env = platform_env

RESULTS = h.ROOT / "bench" / "results"
TARGETS = {"ratio": 1.3, "all_running_s": 60.0}


def core():
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(config_file=os.environ["KUBECONFIG"]))


def remove_bench_pods() -> int:
    from backends import kube_manifests as km

    api = core()
    pods = []
    for label in (INSTANCE, DIRECT):
        pods += api.list_namespaced_pod(namespace(), label_selector=km.selector(label)).items
    for pod in pods:
        api.delete_namespaced_pod(pod.metadata.name, namespace(), grace_period_seconds=0)
    return len(pods)


def namespace() -> str:
    return os.environ.get("ACC_K8S_NAMESPACE", "acc-jobs")


def direct_manifest(image: str, helper: str, job_id: int, command: str) -> dict:
    """The backend's own pod manifest for `command`, as the platform would make it for a job without files."""
    from backends import kube_manifests as km
    from backends.base import JobSpec

    spec = JobSpec(
        job_id=job_id,
        command=command,
        workdir="",
        host_dir=Path("/nonexistent"),
        root_dir=Path("/nonexistent"),
        image=image,
    )
    return km.pod_manifest(
        spec,
        image=image,
        helper_image=helper,
        instance=DIRECT,
        pipe_claim=None,
        with_files=False,
        deadline=600,
        request_fraction=float(os.environ.get("ACC_K8S_REQUEST_FRACTION", "1")),
    )


def direct_pod(image: str, helper: str, i: int) -> tuple[float, float]:
    """The backend's own pod for `true`, created with the client: (s to command running, s to ended)."""
    from backends import kube_manifests as km

    manifest = direct_manifest(image, helper, 1_899_000_000 + i, "true")
    api = core()
    t0 = time.time()
    api.create_namespaced_pod(namespace(), manifest)
    started = ended = None
    try:
        while ended is None and time.time() - t0 < 120:
            pod = api.api_client.sanitize_for_serialization(
                api.read_namespaced_pod(manifest["metadata"]["name"], namespace())
            )
            if started is None and km.job_started(pod):
                started = time.time() - t0
            if km.job_exit(pod) is not None:
                ended = time.time() - t0
                started = started or ended
            time.sleep(0.02)
    finally:
        api.delete_namespaced_pod(manifest["metadata"]["name"], namespace(), grace_period_seconds=0)
    return started or -1.0, ended or -1.0


def latency(api: h.Api, n: int) -> dict:
    from backends import get_backend
    from jobs.models import Job

    out: dict = {"runs": n, "command": "true", "load_before": quiet()}
    plat = s.Platform("kubernetes", "latency")
    platform_run, platform_done = [], []
    direct_run, direct_done = [], []
    try:
        plat.start()
        warm = api.dispatch(s.task("warm", "true"))  # the first push of the image to the registry is not measured
        s.wait_final([warm], timeout=120)
        image = Job.objects.get(pk=warm).image
        os.environ.update(platform_env())
        helper = get_backend("kubernetes").helper_image()
        # The kubelet notices a started container at its next relist (every second), which quantizes both
        # figures: the runs alternate, each after a random pause, so both sides see every phase of that tick.
        for i in range(n):
            time.sleep(random.uniform(0, 1))
            t0 = time.time()
            job_id = api.dispatch(s.task("lat", "true"))
            s.wait_final([job_id], timeout=120)
            job = Job.objects.get(pk=job_id)
            if job.status != "SUCCEEDED":
                raise RuntimeError(f"job {job_id} ended {job.status}: {job.message}")
            platform_run.append(job.running_at.timestamp() - t0)
            platform_done.append(job.finished_at.timestamp() - t0)
            time.sleep(random.uniform(0, 1))
            run_s, done_s = direct_pod(image, helper, i)
            direct_run.append(run_s)
            direct_done.append(done_s)
    finally:
        plat.stop()
    med = statistics.median
    out.update(
        platform_to_running_s=round(med(platform_run), 3),
        platform_to_succeeded_s=round(med(platform_done), 3),
        direct_to_running_s=round(med(direct_run), 3),
        direct_to_ended_s=round(med(direct_done), 3),
        samples={"platform_run": platform_run, "platform_done": platform_done, "direct_run": direct_run},
    )
    out["ratio_running"] = round(out["platform_to_running_s"] / out["direct_to_running_s"], 2)
    out["ratio_succeeded"] = round(out["platform_to_succeeded_s"] / out["direct_to_ended_s"], 2)
    out["load_after"] = s.load()
    return out


def quiet(limit: float = 2.0, wait_s: int = 180) -> list[float]:
    """Wait (up to `wait_s`) for the 1-minute load average to fall under `limit`, e.g. after the pods of the
    previous step went; the load then."""
    deadline = time.time() + wait_s
    while s.load()[0] >= limit and time.time() < deadline:
        time.sleep(5)
    return s.load()


def many(api: h.Api, web: h.WebServer, n: int, sleep: int) -> dict:
    command = f"echo start; sleep {sleep}; echo end"
    out: dict = {"jobs": n, "command": command, "workers": "1 worker, -P threads -c 4", "load_before": quiet()}
    plat = s.Platform("kubernetes", "many")
    sampler = s.Sampler(lambda: {"web": web, **plat.procs()})
    ids: list[int] = []
    try:
        plat.start()
        sampler.start()
        ids, errors, t0, t_sent = s.dispatch_many(api, s.task("many", command), n)
        out.update(dispatched=len(ids), dispatch_errors=errors[:5], dispatch_s=round(t_sent - t0, 2))
        counts, _ = s.wait_final(ids, timeout=sleep + 900)
        out["status"] = counts
        rows = s.rows_of(ids)
        running = [r["running_at"].timestamp() for r in rows.values() if r["running_at"]]
        ended = [r["mapping_outputs_at"].timestamp() for r in rows.values() if r["mapping_outputs_at"]]
        out["all_running_together"] = len(running) == n and max(running) < min(ended, default=0)
        out["all_running_s"] = round(max(running) - t0, 2) if len(running) == n else None
        out["logs"] = s.log_check(ids)
    finally:
        out["resources"] = sampler.stop() if sampler.is_alive() else {"error": "sampler did not run"}
        plat.stop()
        out["load_after"] = s.load()
    return out


def many_direct(n: int, sleep: int) -> dict:
    """The anchor of `many`: the same n pods created at once with the client, no platform in between. How fast
    the node starts pods bounds both."""
    from backends import get_backend
    from backends import kube_manifests as km

    os.environ.update(platform_env())
    backend = get_backend("kubernetes")
    image, helper = backend.resolve_image(h.IMAGE), backend.helper_image()
    command = f"echo start; sleep {sleep}; echo end"
    out: dict = {"pods": n, "command": command, "load_before": quiet()}
    api = core()
    names = []
    t0 = time.time()
    try:
        for i in range(n):
            manifest = direct_manifest(image, helper, 1_898_000_000 + i, command)
            api.create_namespaced_pod(namespace(), manifest)
            names.append(manifest["metadata"]["name"])
        out["create_s"] = round(time.time() - t0, 2)
        running: dict[str, float] = {}
        ended: dict[str, float] = {}
        while len(ended) < n and time.time() - t0 < sleep + 600:
            pods = api.list_namespaced_pod(namespace(), label_selector=km.selector(DIRECT)).items
            now = time.time() - t0
            for pod in pods:
                pod = api.api_client.sanitize_for_serialization(pod)
                name = pod["metadata"]["name"]
                if name in names and km.job_started(pod):
                    running.setdefault(name, now)
                if name in names and km.job_exit(pod) is not None:
                    ended.setdefault(name, now)
            time.sleep(0.5)
        out["all_running_together"] = len(running) == n and max(running.values()) < min(ended.values(), default=1e9)
        out["all_running_s"] = round(max(running.values()), 2) if len(running) == n else None
        out["ended"] = len(ended)
    finally:
        for name in names:
            api.delete_namespaced_pod(name, namespace(), grace_period_seconds=0)
        out["load_after"] = s.load()
    return out


def markdown(res: dict) -> str:
    lines = [
        "# Kubernetes benchmark",
        "",
        f"- date: {res['date']} (took {res.get('duration_s')} s); cluster: {res.get('cluster')}",
        f"- machine: {res['machine']}; load average at start {res['load_start']}, at end {res.get('load_end')}",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    lat = res.get("latency") or {}
    if "ratio_running" in lat:
        lines += [
            f"| trivial job: dispatch -> pod command running (median of {lat['runs']}) | "
            f"{lat['platform_to_running_s']} s | |",
            f"| same pod created with the client: create -> command running | {lat['direct_to_running_s']} s | |",
            f"| ratio (running) | {lat['ratio_running']}x | <= {TARGETS['ratio']} |",
            f"| trivial job: dispatch -> SUCCEEDED | {lat['platform_to_succeeded_s']} s | |",
            f"| same pod: create -> ended | {lat['direct_to_ended_s']} s | |",
            f"| ratio (done) | {lat['ratio_succeeded']}x | <= {TARGETS['ratio']} |",
        ]
    many_ = res.get("many") or {}
    if "status" in many_:
        lines += [
            f"| {many_['jobs']} `sleep` jobs all RUNNING together | {many_['all_running_together']} | true |",
            f"| time from first dispatch until all ran | {many_['all_running_s']} s | <= {TARGETS['all_running_s']} |",
        ]
        direct = res.get("many_direct") or {}
        if "all_running_s" in direct:
            lines += [
                f"| the same {direct['pods']} pods created with the client: all running together | "
                f"{direct['all_running_together']} | |",
                f"| the same pods: time from the first create until all ran | {direct['all_running_s']} s | |",
            ]
        lines += [
            f"| jobs SUCCEEDED | {many_['status'].get('SUCCEEDED', 0)} of {many_['jobs']} | all |",
            f"| logs with start and end once | {many_['logs']['complete']} of {many_['jobs']} | all |",
            f"| peak PostgreSQL connections | {many_['resources'].get('peak_pg_connections_total')} | |",
            f"| peak RSS (MB) | {many_['resources'].get('peak_rss_mb')} | |",
        ]
    for key in ("latency", "many", "many_direct", "error"):
        if key in res and isinstance(res[key], dict) and "error" in res[key]:
            lines += ["", f"## {key}: error", "", "```", res[key]["error"], "```"]
    lines += ["", "```json", json.dumps(res, indent=1, default=str)[:20000], "```", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10, help="trivial jobs measured one after the other")
    p.add_argument("--jobs", type=int, default=100, help="jobs dispatched at once")
    p.add_argument("--sleep", type=int, default=30)
    args = p.parse_args()
    for name in ("KUBECONFIG", "ACC_K8S_REGISTRY"):
        if not os.environ.get(name):
            print(f"{name} is not set: export KUBECONFIG=$(bash scripts/cluster.sh up) ACC_K8S_REGISTRY=127.0.0.1:5000")
            return 2
    started = time.time()
    res: dict = {
        "benchmark": "kube",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs",
        "cluster": "scripts/cluster.sh: Kubernetes 1.20.2, one node, containerd",
        "load_start": s.load(),
    }
    web = None
    code = 0
    try:
        h.reset_data_dir()
        h.flush_redis()
        h.recreate_database()
        h.setup_django()
        seeded = s.seed()
        res["pods_removed_at_start"] = remove_bench_pods()
        web = s.labelled("acc-web", h.WebServer)
        web.wait_ready()
        api = h.Api(web.url, seeded["token"], seeded["project"])
        for key, run in (
            ("latency", lambda: latency(api, args.runs)),
            ("many", lambda: many(api, web, args.jobs, args.sleep)),
            ("many_direct", lambda: many_direct(args.jobs, args.sleep)),
        ):
            print(f"[kube] {key} (load {s.load()})", flush=True)
            try:
                res[key] = run()
            except Exception:
                res[key] = {"error": traceback.format_exc()[-3000:]}
                print(res[key]["error"], file=sys.stderr, flush=True)
                code = 1
    finally:
        if web is not None:
            web.stop()
        res["pods_removed_at_end"] = remove_bench_pods()
        h.flush_redis()
    res["load_end"] = s.load()
    res["duration_s"] = round(time.time() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "kube.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    md = markdown(res)
    (RESULTS / "kube.md").write_text(md)
    print(md[:3000], flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

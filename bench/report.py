"""The Markdown summary of a spine benchmark result (bench/results/spine.md)."""

from __future__ import annotations

PHASE_LABELS = [
    ("api_response", "dispatch call: request -> response"),
    ("call_to_created", "call start -> job row created_at"),
    ("created_to_queued", "created_at -> queued_at"),
    ("response_to_picked_up", "response -> worker picks up (Celery delivery)"),
    ("queued_to_picked_up", "queued_at -> worker picks up"),
    ("picked_up_to_running", "picked up -> running_at (prepare, backend start)"),
    ("running_to_mapping_outputs", "running_at -> mapping_outputs_at (run, wait, log drain)"),
    ("mapping_outputs_to_finished", "mapping_outputs_at -> finished_at"),
    ("finished_to_seen_by_get", "finished_at -> GET /jobs/<id>/ says final"),
    ("worker_service_time", "worker time per job: picked up -> finished_at"),
]


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = f"{value:g}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"
    return f"{value} {unit}".strip()


def _result(ok) -> str:
    return "" if ok is None else ("PASS" if ok else "**FAIL**")


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# Spine benchmark",
        "",
        f"- date: {res['date']} (took {res.get('duration_s', '?')} s)",
        f"- machine: {m['nproc']} CPUs ({m.get('cpu') or '?'}), Python {m['python']}, Docker engine "
        f"{m.get('docker_server') or '?'}, PostgreSQL {m.get('postgres') or '?'}; load average "
        f"{' / '.join(f'{x:.2f}' for x in m['loadavg_start'])} at start, "
        f"{' / '.join(f'{x:.2f}' for x in m.get('loadavg_end', []))} at end",
        f"- code: commit {m.get('git_commit') or '?'}"
        + (f" plus uncommitted changes in {', '.join(m['git_modified'])}" if m.get("git_modified") else ""),
        f"- command: `{res['command']}`",
        "- trivial job: `true` in `acc-test/busybox:latest` (the local backend runs `true` on the host), "
        "dispatched with `POST /api/v1/aterm-cli/bench/jobs/dispatch/`",
        "",
    ]
    if res.get("error"):
        lines += [
            "**The run stopped with an error** (see `error` in the JSON):",
            "",
            "```",
            res["error"].strip().splitlines()[-1],
            "```",
            "",
        ]
    lines += ["| figure | value | target | result | note |", "|---|---|---|---|---|"]
    for f in res["figures"]:
        lines.append(
            f"| {f['name']} | {_fmt(f['value'], f['unit'])} | {f['target'] or ''} | {_result(f['pass'])} "
            f"| {f['note']} |"
        )
    lines.append("")
    for backend in ("local", "docker"):
        for layout in res.get(backend, {}).values():
            lines += [f"## {backend}, {layout['workers']}", ""]
            for part_name, part in layout.items():
                if not isinstance(part, dict):
                    continue
                lines += _part(part_name, part)
    return "\n".join(lines).rstrip() + "\n"


def _part(name: str, part: dict) -> list[str]:
    st = part["status"]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(st["counts"].items()))
    out = []
    if name.startswith("sequential"):
        via = "POST /routines/<id>/run/" if name.endswith("run_endpoint") else "dispatch API"
        lat, get = part["dispatch_latency_ms"], part.get("get_job_request_ms", {})
        out += [f"Sequential, {part['jobs']} jobs after {part['warmup']} warm-up, via {via} ({counts}):", ""]
        out.append(
            f"- dispatch latency (call -> running_at): median {_fmt(lat.get('median'))} ms, "
            f"p95 {_fmt(lat.get('p95'))} ms"
        )
        out.append(
            f"- total (call -> finished_at): median {_fmt(part['total_finished_at_ms'].get('median'))} ms; "
            f"(call -> GET says SUCCEEDED): median {_fmt(part['total_seen_by_get_ms'].get('median'))} ms"
        )
        out.append(
            f"- each GET /jobs/<id>/ poll took: median {_fmt(get.get('median'))} ms, "
            f"p95 {_fmt(get.get('p95'))} ms (next poll 10 ms after an answer)"
        )
        if "raw_docker_run_ms" in part:
            raw, same = part["raw_docker_run_ms"], part["raw_docker_run_platform_flags_ms"]
            out.append(
                f"- raw `docker run --rm busybox true`: median {_fmt(raw.get('median'))} ms over "
                f"{raw.get('n')}; overhead ratio {_fmt(part.get('overhead_ratio_finished_at'))}x "
                f"(finished_at), {_fmt(part.get('overhead_ratio_seen_by_get'))}x (seen by GET)"
            )
            out.append(
                f"- raw `docker run --rm {part.get('raw_platform_flags')} busybox true` (the platform's "
                f"container settings): median {_fmt(same.get('median'))} ms; overhead ratio "
                f"{_fmt(part.get('overhead_ratio_finished_at_vs_platform_flags'))}x (finished_at), "
                f"{_fmt(part.get('overhead_ratio_seen_by_get_vs_platform_flags'))}x (seen by GET)"
            )
            out.append(
                f"- raw `docker run --rm --network none busybox true` alone: median "
                f"{_fmt(part.get('raw_docker_run_network_none_ms', {}).get('median'))} ms"
            )
    else:
        drain = part.get("measured_from") == "first_picked_up"
        what = (
            "Drain: jobs queued with no worker running, then the workers started"
            if drain
            else "Throughput: jobs dispatched while the workers run"
        )
        span = "first pick-up" if drain else "first call"
        out += [f"{what}; {part['jobs']} jobs from {part['client_threads']} client threads ({counts}):", ""]
        out.append(
            f"- {_fmt(part.get('jobs_per_s'))} jobs/s: {span} -> last finished_at "
            f"{_fmt(part.get('elapsed_s'))} s{' (TIMED OUT)' if part.get('timed_out') else ''}"
        )
        out.append(
            f"- dispatching took {part['dispatch_s']} s ({part['dispatch_rate_per_s']} calls/s, "
            f"{part['dispatch_error_count']} refused)"
        )
        cpu = part.get("cpu_ms_per_job")
        if cpu:
            out.append(
                f"- CPU per job: web {cpu['web']} ms, workers {cpu['workers']} ms, PostgreSQL {cpu['postgres']} ms, "
                f"bench client {cpu['client']} ms, the rest (Docker engine, kernel, Redis, other tenants) "
                f"{cpu['rest_engine_kernel_redis_others']} ms; whole machine {cpu['machine_all_processes']} ms "
                f"({part['machine_busy_pct']}% of all CPUs busy over {part['wall_s']} s); "
                f"{part.get('new_postgres_sessions_per_job')} new PostgreSQL sessions per job"
            )
    if not st["all_succeeded"]:
        out.append(f"- **not all jobs succeeded**, e.g. {st['examples'][:2]}")
    out += ["", "| phase | median ms | p95 ms |", "|---|---|---|"]
    for key, label in PHASE_LABELS:
        s = part["phases_ms"].get(key)
        if s and s.get("n"):
            out.append(f"| {label} | {_fmt(s['median'])} | {_fmt(s['p95'])} |")
    out.append("")
    return out

"""The job directory: everything about one job in one zip (its "why" comes from builds.why)."""

from __future__ import annotations

import json
import tempfile
import zipfile

from builds import cache
from builds.why import explain
from files import code as code_source
from files import jobstore
from jobs.models import Job, JobEvent, JobOutput, LogChunk
from jobs.states import Status
from workers.serializers import JobSerializer


def profiling(job: Job) -> dict:
    """Seconds spent in each phase; for a reused job, the original's run time (the time saved)."""
    marks = [
        ("queued", job.queued_at),
        ("building", job.building_at),
        ("mapping_inputs", job.mapping_inputs_at),
        ("running", job.running_at),
        ("mapping_outputs", job.mapping_outputs_at),
        ("finished", job.finished_at),
    ]
    present = [(name, at) for name, at in marks if at]
    phases = {
        name: round((nxt - at).total_seconds(), 3) for (name, at), (_, nxt) in zip(present, present[1:], strict=False)
    }
    result = {
        "phases_seconds": phases,
        "total_seconds": round((job.finished_at - job.created_at).total_seconds(), 3) if job.finished_at else None,
        "peak_memory_bytes": job.peak_memory_bytes,
        "cpu_seconds": job.cpu_seconds,
        "usage": job.usage,
    }
    if job.reused_from_id and job.status == Status.SUCCEEDED:
        ran = cache.run_seconds(job.reused_from)
        result.update(reused_from=job.reused_from_id, original_run_seconds=ran, time_saved_seconds=ran)
    return result


def _code_snapshot(job: Job) -> dict:
    spec = job.routine_version.spec if job.routine_version_id else {}
    source = spec.get("code") or {"kind": "none"}
    snapshot = {"source": {**source, "url": code_source.redact(source.get("url", ""))} if source.get("url") else source}
    if job.code_commit:
        snapshot["commit"] = job.code_commit
    if source.get("kind") == "jobstore":
        kind, sha1, filename = code_source.parse_jobstore_url(source["url"])
        if kind == "manifest" and jobstore.exists(project=job.project, filename=filename):
            snapshot["manifest"] = jobstore.load_manifest(project=job.project, sha1=sha1)
    return snapshot


def archive(job: Job, user) -> tempfile.SpooledTemporaryFile:
    """A zip of the job directory: job, identity, code manifest, log, outputs, events, profiling, why."""

    def dump(value) -> str:
        return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"

    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    prefix = f"job-{job.pk}/"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(prefix + "job.json", dump(JobSerializer(job).data))
        zf.writestr(prefix + "identity.json", dump({"key": job.cache_key or None, "document": job.identity}))
        zf.writestr(prefix + "spec.json", dump(job.routine_version.spec if job.routine_version_id else None))
        zf.writestr(prefix + "code.json", dump(_code_snapshot(job)))
        with zf.open(prefix + "log.txt", "w") as log:
            for text in LogChunk.objects.filter(job=job).order_by("seq").values_list("text", flat=True).iterator():
                log.write(text.encode())
        outputs = list(JobOutput.objects.filter(job=job).values("path", "size", "sha256"))
        zf.writestr(prefix + "outputs.json", dump(outputs))
        events = list(JobEvent.objects.filter(job=job).values("status", "reason", "created_at"))
        zf.writestr(prefix + "events.json", dump(events))
        zf.writestr(prefix + "profiling.json", dump(profiling(job)))
        zf.writestr(prefix + "why.json", dump(explain(job, user)))
    out.seek(0)
    return out

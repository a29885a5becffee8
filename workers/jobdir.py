"""Everything about one job in one place: the "why" of the cache and the job directory archive."""

from __future__ import annotations

import json
import tempfile
import zipfile

from builds import identity
from files import code as code_source
from files import jobstore
from jobs import permissions as job_permissions
from jobs.models import Job, JobEvent, JobOutput, LogChunk
from jobs.states import Status

_NEAREST_WINDOW = 50


def explain(job: Job, user) -> dict:
    """Why `job` was or was not reused: the cache's note, and the nearest earlier job with what differs."""
    reused = job.status == Status.SUCCEEDED and job.reused_from_id is not None
    answer = {
        "job": job.pk,
        "key": job.cache_key or None,
        "reused": reused,
        "reused_from": job.reused_from_id if reused else None,
        "explanation": job.cache_note or _default_note(job),
        "nearest": None,
    }
    if not job.identity:
        return answer
    if reused:
        answer["nearest"] = {"id": job.reused_from_id, "differences": [], "status": Status.SUCCEEDED}
        return answer
    earlier = Job.objects.filter(pk__lt=job.pk, identity__isnull=False).select_related("project")
    if job.routine_version_id:
        earlier = earlier.filter(routine_version__routine_id=job.routine_version.routine_id)
    best = None
    for other in earlier.order_by("-pk")[:_NEAREST_WINDOW]:
        if not job_permissions.can_read_job(user, other):
            continue
        diff = identity.differences(other.identity, job.identity)
        if best is None or len(diff) < len(best[1]):
            best = (other, diff)
        if not diff:
            break
    if best is not None:
        other, diff = best
        answer["nearest"] = {
            "id": other.pk,
            "status": other.status,
            "created_at": other.created_at.isoformat(),
            "differences": diff,
        }
    return answer


def _default_note(job: Job) -> str:
    if job.routine_version_id is None:
        return "A jobflow's root runs nothing itself; see its nodes."
    if not job.identity:
        return "The job's identity is not known yet; it is recorded when the job starts."
    return "No earlier successful job with this identity that you may read."


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
        original = job.reused_from
        start = original.building_at or original.mapping_inputs_at or original.running_at
        ran = (original.finished_at - start).total_seconds() if start and original.finished_at else None
        result.update(reused_from=original.pk, original_run_seconds=ran, time_saved_seconds=ran)
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
    from workers.serializers import JobSerializer

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

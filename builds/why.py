"""Why a job was or was not answered from the build-system cache, and the nearest earlier job that differs."""

from __future__ import annotations

from builds import identity
from jobs import permissions as job_permissions
from jobs.models import Job
from jobs.states import Status

_NEAREST_WINDOW = 50  # earlier jobs of the same routine compared with this one


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

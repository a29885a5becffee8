"""Writes the pages need that no other app offers as one call."""

from __future__ import annotations

from accelerator.crypto import decrypt_json
from accelerator.errors import InvalidInput
from jobs.models import Job
from workers import dispatch


def rerun_job(*, job: Job, user, force_build: bool = False) -> Job:
    """Run a job's routine version again with the same conf, secrets and resources.

    Without `force_build` the build-system cache may answer it at once with
    the earlier result; with it the job really runs again.
    """
    if job.routine_version_id is None:
        raise InvalidInput("A jobflow is not re-run as a whole; retry its failed nodes or dispatch it again.")
    routine = job.routine_version.routine
    return dispatch.run_routine(
        routine=routine,
        user=user,
        conf=dict(job.conf or {}),
        secrets=decrypt_json(job.secrets_encrypted, default={}),
        version=job.routine_version,
        force_build=force_build,
        resources={field: getattr(job, field) for field in RERUN_RESOURCES},
    )


# What a re-run keeps of the original job besides conf and secrets (Job fields).
RERUN_RESOURCES = ("required_cores", "required_ram", "required_storage_local", "required_storage_workflow", "timeout")

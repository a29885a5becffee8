"""Builds the frozen JobSpec/BuildSpec a backend runs from a job row (the only bridge models -> backends)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings

from backends.base import PIPE_MOUNT, BuildSpec, JobSpec
from backends.sockets import CONF_KEY
from files import mappings
from jobs.models import Job

__all__ = ["PIPE_MOUNT", "build_job_spec", "build_spec_for", "build_tag", "job_dir", "pipe_name", "workdir_for"]


def job_dir(job_id: int) -> Path:
    return settings.ACC_JOBS_DIR / str(job_id)


def workdir_for(stack: dict, *, uses_images: bool) -> str:
    if stack["kind"] == "base_stack":
        return stack["workdir"]
    if stack["kind"] == "docker_filename" and uses_images:
        return ""  # the Dockerfile's own WORKDIR
    return settings.ACC_DEFAULT_WORKDIR


def job_env(job: Job, secrets: dict) -> dict:
    env = {str(k): str(v) for k, v in (job.conf or {}).items()}
    env.update({str(k): str(v) for k, v in secrets.items()})
    env.update(ACC_JOB_ID=str(job.pk), ACC_PROJECT=job.project.slug)
    return env


def pipe_name(job: Job) -> str:
    """The workflow volume: one per jobflow run, shared by its nodes; a lone job gets its own."""
    return job.flow_run.pipe if job.flow_run_id else f"acc-pipe-job-{job.pk}"


def build_job_spec(
    job: Job, *, image: str | None, secrets: dict, uses_images: bool, extra_env: dict | None = None
) -> JobSpec:
    """`extra_env`: what the platform adds for this run only (an interactive session's URL)."""
    spec = job.routine_version.spec
    host = job_dir(job.pk)
    return JobSpec(
        job_id=job.pk,
        command=spec["command"],
        workdir=workdir_for(spec["stack"], uses_images=uses_images),
        host_dir=host,
        root_dir=host / "root",
        image=image,
        env={**job_env(job, secrets), **(extra_env or {})},
        pipe=pipe_name(job),
        pipe_shared=bool(job.flow_run_id),
        cores=job.required_cores,
        ram=job.required_ram,
        storage_local=job.required_storage_local,
        storage_workflow=job.required_storage_workflow,
        timeout=job.timeout,
        network=settings.ACC_DOCKER_NETWORK,
        labels={"acc.project": job.project.slug},
        interactive=(job.conf or {}).get(CONF_KEY, ""),
        outputs=tuple(m.source for m in mappings.parse_output_mappings((job.conf or {}).get("output_mappings") or "")),
    )


def build_tag(stack: dict, code_id: str) -> str:
    """The tag of the image built for `stack` with code `code_id`: the same inputs give the same tag."""
    basis = f"{sorted(stack.items())}|{code_id}".encode()
    return f"acc-build/{hashlib.sha256(basis).hexdigest()[:32]}:latest"


def build_spec_for(job: Job, *, code_dir: Path, code_id: str) -> BuildSpec | None:
    """The image build a job's stack needs, or None when it runs a ready image.

    The tag hashes the stack definition and the code's identity (manifest
    sha or git commit), so the same folder on the same stack builds once.
    """
    stack = job.routine_version.spec["stack"]
    if stack["kind"] not in ("docker_filename", "base_stack"):
        return None
    timeout = job.routine_version.spec.get("build_timeout") or settings.ACC_DEFAULT_BUILD_TIMEOUT
    common = {
        "context_dir": code_dir,
        "tag": build_tag(stack, code_id),
        "timeout": timeout,
        "force": job.force_build,
    }
    if stack["kind"] == "docker_filename":
        return BuildSpec(kind="docker_filename", dockerfile=stack["dockerfile"], **common)
    return BuildSpec(
        kind="base_stack",
        base_image=stack["image"],
        workdir=stack["workdir"],
        install_command=stack.get("install", ""),
        **common,
    )

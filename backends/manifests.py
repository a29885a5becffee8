"""What the Docker backend asks the engine for, as plain data.

Pure functions from a JobSpec to the keyword arguments of
`client.containers.create(...)` and to the Dockerfile of a base_stack build,
like JupyterHub's KubeSpawner builds pod manifests, plus the path rules for
what is sent to and copied out of the engine. No Django, no docker imports,
so every isolation rule below is unit-tested with plain asserts.

Isolation rules a job container always gets: not privileged, no new
privileges, a pids limit, memory without extra swap, a CPU quota, and no host
paths: the only mount is the workflow volume, a *named* volume. The one
exception is an interactive job on a Unix socket, which gets an empty
per-job host folder of the platform's own at the socket's folder, so the
proxy can reach the socket (`interactive_kwargs`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import PurePosixPath

from backends.base import PIPE_MOUNT, JobSpec, job_name
from backends.sockets import Socket, parse_socket

MANAGED_LABEL = "acc.managed"
JOB_LABEL = "acc.job"
PIPE_LABEL = "acc.pipe"
DEFAULT_PIDS_LIMIT = 1024

# Docker's own rule for volume names; anything else could be read as a host path.
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_IMAGE_REF = re.compile(r"^[^\s]+$")


def job_labels(spec: JobSpec) -> dict[str, str]:
    """Labels that let a restarted worker or the reconciler find the container; ours win over spec.labels."""
    return {**{str(k): str(v) for k, v in spec.labels.items()}, MANAGED_LABEL: "1", JOB_LABEL: str(spec.job_id)}


def managed_filter(job_id: int | None = None) -> dict[str, list[str]]:
    """The `filters=` of a containers.list() call that finds our containers (of one job)."""
    labels = [f"{MANAGED_LABEL}=1"]
    if job_id is not None:
        labels.append(f"{JOB_LABEL}={job_id}")
    return {"label": labels}


def check_volume_name(name: str) -> str:
    """Refuse names Docker would not take as a volume name, so a pipe can never become a bind mount."""
    if not _VOLUME_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid workflow volume name (letters, digits, '_', '.', '-').")
    return name


def pipe_volume_kwargs(pipe: str) -> dict:
    """Keyword arguments of `client.volumes.create(...)` for a workflow volume."""
    return {"name": check_volume_name(pipe), "labels": {MANAGED_LABEL: "1", PIPE_LABEL: pipe}}


def pipe_mount(pipe: str) -> dict:
    """The engine's Mount object for the workflow volume; Type "volume" means never a host path."""
    return {"Type": "volume", "Source": check_volume_name(pipe), "Target": PIPE_MOUNT, "ReadOnly": False}


def nano_cpus(cores: float, max_cores: int | None = None) -> int:
    """CPU quota in billionths of a core; capped at what the engine has, since it refuses more."""
    if max_cores:
        cores = min(cores, float(max_cores))
    return max(int(cores * 1e9), 10_000_000)  # the engine's floor is 0.01 core


def container_kwargs(
    spec: JobSpec, *, pids_limit: int = DEFAULT_PIDS_LIMIT, max_cores: int | None = None, network: str = "none"
) -> dict:
    """Everything `client.containers.create(**kwargs)` needs to run `spec`.

    `network` is the fallback when the spec names none. Swap is capped at the
    memory limit so a job over its RAM is OOM-killed instead of swapping.
    `init` puts a tiny init as PID 1: a TERM reaches the command (sh as PID 1
    ignores it) and zombies are reaped.
    """
    if not spec.image:
        raise ValueError("the docker backend needs an image to run a job")
    return {
        "image": spec.image,
        "name": job_name(spec.job_id),
        "command": ["/bin/sh", "-c", spec.command],
        "working_dir": spec.workdir or None,  # empty: the image's own WORKDIR
        "environment": {str(k): str(v) for k, v in spec.env.items()},
        "labels": job_labels(spec),
        "mem_limit": int(spec.ram),
        "memswap_limit": int(spec.ram),
        "nano_cpus": nano_cpus(spec.cores, max_cores),
        "pids_limit": int(pids_limit),
        "network_mode": spec.network or network,
        "privileged": False,
        "security_opt": ["no-new-privileges"],
        "mounts": [pipe_mount(spec.pipe)] if spec.pipe else [],
        "init": True,
        "stdin_open": False,
        "tty": False,
    }


def interactive_network_name(instance: str, job_id: int) -> str:
    """The per-job network of an interactive job on TCP (deterministic, so cleanup finds it again)."""
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", instance)[:40] or "default"
    return f"acc-int-{safe}-{job_id}"


def interactive_network_kwargs(name: str, *, job_id: int, labels: Mapping[str, str]) -> dict:
    """`client.networks.create(**kwargs)` of a per-job interactive network.

    `internal`: no route out and, on an engine that manages iptables, no
    traffic to other bridges; one bridge per job so sessions cannot reach
    each other's servers past the proxy.
    """
    return {
        "name": name,
        "driver": "bridge",
        "internal": True,
        "labels": {**labels, MANAGED_LABEL: "1", JOB_LABEL: str(job_id)},
    }


def interactive_socket_of(spec: JobSpec) -> Socket | None:
    return parse_socket(spec.interactive) if spec.interactive else None


def interactive_kwargs(kwargs: dict, socket: Socket, *, network: str, host_dir: str) -> dict:
    """`container_kwargs` of an interactive job: TCP joins `network`; a Unix socket's folder is `host_dir`.

    Only the socket's own folder is shared (never a path the user chose on
    the host): the platform creates `host_dir` empty for this job alone.
    """
    if socket.kind == "tcp":
        return {**kwargs, "network_mode": network}
    bind = {"Type": "bind", "Source": host_dir, "Target": socket.folder, "ReadOnly": False}
    return {**kwargs, "mounts": [*kwargs.get("mounts", []), bind]}


def base_stack_dockerfile(*, base_image: str, workdir: str, install_command: str = "") -> str:
    """The Dockerfile of a base_stack build: the job folder copied into `workdir` of `base_image`.

    COPY and RUN use the JSON form so paths with spaces and multi-line
    install commands arrive unchanged.
    """
    if not base_image or not _IMAGE_REF.match(base_image):
        raise ValueError(f"{base_image!r} is not an image name.")
    if not PurePosixPath(workdir).is_absolute() or "\n" in workdir:
        raise ValueError(f"The workdir {workdir!r} must be an absolute path.")
    lines = [f"FROM {base_image}", f"WORKDIR {workdir}", f"COPY {json.dumps(['.', workdir])}"]
    if install_command.strip():
        lines.append(f"RUN {json.dumps(['/bin/sh', '-c', install_command])}")
    return "\n".join(lines) + "\n"


def parse_dockerignore(text: str) -> list[str]:
    """Patterns of a .dockerignore, the way the docker CLI reads it (blank lines and comments dropped)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def dockerfile_path(dockerfile: str) -> str:
    """A docker_filename stack's Dockerfile as a path inside the build context.

    docker-py reads a Dockerfile outside the context from the worker host and
    sends it to the builder, so anything absolute or climbing out is refused.
    """
    path = PurePosixPath(dockerfile or "Dockerfile")
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"The Dockerfile {dockerfile} must be a path inside the job folder.")
    return str(path)


def export_member_path(name: str, strip: str | None) -> str | None:
    """Where a member of a get_archive tar lands below the export destination; None: do not extract it.

    Exporting a folder, the engine's tar starts with the folder's own name
    (`strip`), which is dropped so the contents land directly in the
    destination. Absolute or climbing (`..`) paths are never extracted.
    """
    path = PurePosixPath(name)
    if strip is not None:
        if path.parts[:1] != (strip,) or len(path.parts) == 1:
            return None
        path = PurePosixPath(*path.parts[1:])
    if not path.parts or path.is_absolute() or ".." in path.parts:
        return None
    return str(path)


def state_for(spec: JobSpec, *, container_id: str, network: str) -> dict:
    """The JSON-serialisable state stored with the job; enough to find everything `start` made."""
    return {
        "name": job_name(spec.job_id),
        "job_id": spec.job_id,
        "id": container_id,
        "image": spec.image,
        "pipe": spec.pipe,
        "network": network,
    }


def labels_job_id(labels: Mapping[str, str]) -> int | None:
    """The job id of a container from its labels, None when it is not one of ours."""
    try:
        return int(labels[JOB_LABEL]) if labels.get(MANAGED_LABEL) == "1" else None
    except (KeyError, ValueError):
        return None

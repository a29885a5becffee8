"""What a job's pod looks like on the kubernetes backend: pure functions from a JobSpec to API objects.

A job is one Pod (`acc-job-<id>`) with three containers sharing an
emptyDir at /.acc/io:

- `acc-in` (init, the helper image) waits until the platform has unpacked the
  job's files (its folder and input mappings) into /.acc/io/root through
  the API server (`exec tar -x`), then ends;
- `job` (the job's image) runs a small sh wrapper: copy /.acc/io/root over
  "/", run the command (TERM is passed on to it), copy each output path to
  /.acc/io/out/<n>, exit with the command's code;
- `acc-out` (the helper image) stays up after `job` ended, so the platform
  can read the outputs (`exec tar -c`) also when the command failed; the
  pod is deleted afterwards.

No host path is mounted, the pod gets no service-account token and no
service links, nothing escalates privileges and only a short list of
capabilities is kept. Everything here is a plain dict, as the API takes it.
"""

from __future__ import annotations

import math
import re

from backends.base import PIPE_MOUNT, JobSpec, job_name
from backends.manifests import JOB_LABEL, MANAGED_LABEL

INSTANCE_LABEL = "acc.instance"
PIPE_LABEL = "acc.pipe"
IO = "/.acc/io"
JOB_CONTAINER = "job"
IN_CONTAINER = "acc-in"
OUT_CONTAINER = "acc-out"
IN_DONE = f"{IO}/.in-done"
COLLECTED = f"{IO}/.collected"
# kept: what an ordinary program in an image expects of root (own files, users, signals); dropped: the rest
# (raw sockets, mknod, chroot, audit, setfcap, ...)
KEPT_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID"]

# $ACC_OUTPUTS holds one container path per line; the n-th is copied to $IO/out/<n> (its contents for a
# folder, the file itself otherwise), or a "<n>.missing" marker is left.
WRAPPER = r"""
if [ -d /.acc/io/root ]; then
  cp -a /.acc/io/root/. / || { echo "[ERROR] The job's files could not be placed in the container." >&2; exit 125; }
fi
if [ -n "$ACC_WORKDIR" ]; then cd "$ACC_WORKDIR" || exit 125; fi
/bin/sh -c "$ACC_COMMAND" &
child=$!
trap 'kill -TERM $child 2>/dev/null' TERM INT
wait $child; rc=$?
while kill -0 $child 2>/dev/null; do wait $child; rc=$?; done
n=0
printf '%s\n' "$ACC_OUTPUTS" | while IFS= read -r path; do
  [ -n "$path" ] || continue
  n=$((n + 1))
  mkdir -p /.acc/io/out/$n
  if [ -d "$path" ]; then cp -a "$path/." /.acc/io/out/$n/
  elif [ -e "$path" ]; then cp -a "$path" /.acc/io/out/$n/
  else touch /.acc/io/out/$n.missing; fi
done
exit $rc
"""

_DNS_LABEL = re.compile(r"[^a-z0-9-]+")
# The helpers' sh is their container's PID 1, which ignores TERM without a handler: the kubelet would wait the
# whole grace period for them before it reports the pod's (the job's) end. `sleep & wait` lets the trap run at once.
_ON_TERM_EXIT = "trap 'exit 0' TERM;"


def pod_name(job_id: int) -> str:
    return job_name(job_id)


def dns_name(name: str) -> str:
    """A Kubernetes object name (DNS-1123 label) for a platform name such as a workflow volume's."""
    return _DNS_LABEL.sub("-", name.lower()).strip("-")[:63] or "acc"


def instance_labels(instance: str) -> dict[str, str]:
    return {MANAGED_LABEL: "1", INSTANCE_LABEL: dns_name(instance)}


def selector(instance: str) -> str:
    return ",".join(f"{k}={v}" for k, v in instance_labels(instance).items())


def output_index(spec_outputs: list[str], path: str) -> int | None:
    """The folder number ($IO/out/<n>) the wrapper copied output `path` to."""
    try:
        return spec_outputs.index(path) + 1
    except ValueError:
        return None


def _quantity_cpu(cores: float) -> str:
    return f"{max(1, math.ceil(cores * 1000))}m"


def _security(*, keep: list[str]) -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"], **({"add": keep} if keep else {})},
    }


def pod_manifest(
    spec: JobSpec,
    *,
    image: str,
    helper_image: str,
    instance: str,
    pipe_claim: str | None,
    with_files: bool,
    deadline: int | None,
    request_fraction: float = 1.0,
) -> dict:
    """The Pod of `spec`. `pipe_claim`: the PersistentVolumeClaim mounted at /mnt/pipe; `deadline`: the
    pod's own activeDeadlineSeconds (a backstop behind the supervisor's timer; None for sessions)."""
    io_mount = {"name": "acc-io", "mountPath": IO}
    mounts = [io_mount]
    volumes: list[dict] = [{"name": "acc-io", "emptyDir": {}}]
    if pipe_claim:
        volumes.append({"name": "acc-pipe", "persistentVolumeClaim": {"claimName": pipe_claim}})
    else:  # a lone job's /mnt/pipe lives and dies with its pod
        volumes.append({"name": "acc-pipe", "emptyDir": {"sizeLimit": str(int(spec.storage_workflow))}})
    mounts.append({"name": "acc-pipe", "mountPath": PIPE_MOUNT})
    limits = {
        "cpu": _quantity_cpu(spec.cores),
        "memory": str(int(spec.ram)),
        "ephemeral-storage": str(int(spec.storage_local)),
    }
    requests = dict(limits)
    if request_fraction < 1:  # an operator's overcommit: the scheduler counts less than the job may use
        requests.update(cpu=_quantity_cpu(spec.cores * request_fraction), memory=str(int(spec.ram * request_fraction)))
    env = [{"name": str(k), "value": str(v)} for k, v in spec.env.items()]
    env += [
        {"name": "ACC_COMMAND", "value": spec.command},
        {"name": "ACC_WORKDIR", "value": spec.workdir or ""},
        {"name": "ACC_OUTPUTS", "value": "\n".join(spec.outputs)},
    ]
    small = {
        "requests": {"cpu": "1m", "memory": str(4 * 1024**2)},
        "limits": {"cpu": "50m", "memory": str(32 * 1024**2)},
    }
    helper = {"image": helper_image, "imagePullPolicy": "IfNotPresent", "resources": small}
    init = []
    if with_files:
        wait_for_files = f"{_ON_TERM_EXIT} until [ -e {IN_DONE} ]; do sleep 0.1 & wait $!; done"
        init.append(
            {
                **helper,
                "name": IN_CONTAINER,
                "command": ["/bin/sh", "-c", wait_for_files],
                "volumeMounts": [io_mount],
                "securityContext": _security(keep=["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"]),
            }
        )
    keep_up = f"{_ON_TERM_EXIT} until [ -e {COLLECTED} ]; do sleep 1 & wait $!; done"
    # the sidecar that keeps the pod up for the platform to read what the job left: its outputs, or a jobflow
    # node's /mnt/pipe; a job with neither is a pod of one container, which a node starts sooner
    collect = bool(spec.outputs) or bool(pipe_claim) or spec.pipe_shared
    labels = {k.replace("/", "-"): dns_name(str(v)) for k, v in spec.labels.items()}
    labels.update({**instance_labels(instance), JOB_LABEL: str(spec.job_id)})  # ours win
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 5,
        "volumes": volumes,
        "initContainers": init,
        "containers": [
            {
                "name": JOB_CONTAINER,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c", WRAPPER],
                "env": env,
                "resources": {"requests": requests, "limits": limits},
                "volumeMounts": mounts,
                "securityContext": _security(keep=KEPT_CAPABILITIES),
            },
        ],
    }
    if collect:
        pod_spec["containers"].append(
            {
                **helper,
                "name": OUT_CONTAINER,
                "command": ["/bin/sh", "-c", keep_up],
                "volumeMounts": mounts,
                "securityContext": _security(keep=[]),
            }
        )
    if deadline:
        pod_spec["activeDeadlineSeconds"] = int(deadline)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name(spec.job_id), "labels": labels},
        "spec": pod_spec,
    }


def pipe_claim_manifest(pipe: str, *, instance: str, size: int, storage_class: str, volume: str | None) -> dict:
    """The workflow volume of a jobflow run: a claim of `storage_class`, or bound to the platform's own `volume`."""
    spec: dict = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(int(size))}},
        "storageClassName": storage_class,
    }
    if volume:
        spec["volumeName"] = volume
    labels = {**instance_labels(instance), PIPE_LABEL: dns_name(pipe)}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": dns_name(pipe), "labels": labels},
        "spec": spec,
    }


def host_volume_manifest(pipe: str, *, instance: str, size: int, path: str, storage_class: str) -> dict:
    """A hostPath PersistentVolume for one workflow volume: single-node clusters (tests, a laptop) only."""
    labels = {**instance_labels(instance), PIPE_LABEL: dns_name(pipe)}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": dns_name(f"{instance}-{pipe}"), "labels": labels},
        "spec": {
            "capacity": {"storage": str(int(size))},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",  # the backend removes the folder itself
            "storageClassName": storage_class,
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
        },
    }


def helper_pod_manifest(name: str, *, helper_image: str, instance: str, pipe_claim: str) -> dict:
    """A pod that only mounts a workflow volume, for the platform to read or fill it through exec."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {**instance_labels(instance), PIPE_LABEL: pipe_claim}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 0,
            "activeDeadlineSeconds": 3600,
            "volumes": [{"name": "acc-pipe", "persistentVolumeClaim": {"claimName": pipe_claim}}],
            "containers": [
                {
                    "name": OUT_CONTAINER,
                    "image": helper_image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/bin/sh", "-c", "sleep 3600"],
                    "volumeMounts": [{"name": "acc-pipe", "mountPath": PIPE_MOUNT}],
                    "securityContext": _security(keep=["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"]),
                }
            ],
        },
    }


def job_exit(pod: dict) -> tuple[int, bool, str] | None:
    """(exit code, OOM-killed, reason) once the job container ended; None while it has not.

    `pod` is the API's dict form (camelCase keys). A pod that failed as a whole (its deadline, an eviction)
    ends the job with -1 and the pod's reason.
    """
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        if container.get("name") != JOB_CONTAINER:
            continue
        ended = (container.get("state") or {}).get("terminated")
        if ended:
            reason = ended.get("reason") or ""
            return int(ended.get("exitCode", -1)), reason == "OOMKilled", reason
    if status.get("phase") in ("Failed", "Succeeded"):
        return -1, False, status.get("reason") or status.get("message") or status.get("phase")
    return None


PULL_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable"}


def waiting_problem(pod: dict) -> str | None:
    """Why the pod cannot start (an image that cannot be pulled, a container that cannot be created), if so."""
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason") or ""
        if reason in PULL_ERRORS or reason in ("CreateContainerConfigError", "CreateContainerError"):
            return f"{reason}: {waiting.get('message') or 'no details'} (container {container.get('name')})"
    return None  # Unschedulable is a wait for capacity, not a failure


def pending_reason(pod: dict) -> str:
    """What a pod that has not started waits for, for a message."""
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True" and condition.get("message"):
            return f"{condition.get('reason')}: {condition.get('message')}"
    return status.get("phase") or "Pending"


def container_running(pod: dict, name: str) -> bool:
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if container.get("name") == name:
            return bool((container.get("state") or {}).get("running"))
    return False


def job_started(pod: dict) -> bool:
    """The job container runs or ran (its command started)."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        if container.get("name") == JOB_CONTAINER:
            state = container.get("state") or {}
            return bool(state.get("running") or state.get("terminated"))
    return False

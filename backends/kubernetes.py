"""The `kubernetes` backend: each job is a Pod in one namespace of a cluster (see kube_manifests).

Images are built (or found, or pulled) on the Docker engine of the workers,
as on the docker backend, then pushed to the cluster's registry
(ACC_K8S_REGISTRY); pods pull them by digest, so what runs is exactly what
was built. Files cross through the API server only: the job's folder and
inputs are unpacked into the pod by `exec tar -x` before its command
starts, outputs are read by `exec tar -c` after it ended. Nothing here holds
a thread while a job runs: the supervisor follows pods through its own
watch (backends.kube_watch); these calls are the short steps of a worker.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from backends import kube_manifests as km
from backends import sockets
from backends.base import (
    PIPE_MOUNT,
    Backend,
    BackendError,
    BuildSpec,
    Exit,
    ImageNotFound,
    JobSpec,
    job_id_of,
    job_name,
)
from backends.docker import DockerBackend

log = logging.getLogger(__name__)

_POLL = 0.1  # s between reads of a pod whose files container is not running yet
_EXEC_CHUNK = 1 << 20
_NOT_FOUND = 404
_REGISTRY_BELIEVED = 300.0  # s a registry's "I have it" is trusted without asking again


class KubernetesBackend(Backend):
    name = "kubernetes"
    uses_images = True

    def __init__(self, *, docker: DockerBackend | None = None):
        from django.conf import settings

        self.namespace = settings.ACC_K8S_NAMESPACE
        self.kubeconfig = settings.ACC_K8S_KUBECONFIG
        self.registry = settings.ACC_K8S_REGISTRY.rstrip("/")
        self.helper_image_name = settings.ACC_K8S_HELPER_IMAGE
        self.start_timeout = settings.ACC_K8S_START_TIMEOUT
        self.request_fraction = settings.ACC_K8S_REQUEST_FRACTION
        self.pipe_storage_class = settings.ACC_K8S_PIPE_STORAGE_CLASS
        self.pipe_host_dir = settings.ACC_K8S_PIPE_HOST_DIR
        self.instance = settings.ACC_INSTANCE
        self.docker = docker or DockerBackend()  # the builder: the workers' own engine
        self._api = None
        self._helper_image: str | None = None
        self._seen_in_registry: dict[str, float] = {}  # repo@digest -> until when the registry is known to have it

    # --- the API ----------------------------------------------------------------------
    @property
    def core(self):
        """The CoreV1Api, connected on first use (a backend can be built while the cluster is down)."""
        if self._api is None:
            from kubernetes import client, config

            try:
                if self.kubeconfig:
                    api_client = config.new_client_from_config(config_file=self.kubeconfig)
                else:
                    config.load_incluster_config()
                    api_client = client.ApiClient()
            except Exception as exc:
                raise BackendError(
                    f"Cannot load the cluster's configuration ({self.kubeconfig or 'in-cluster'}): {exc}"
                )
            self._api = client.CoreV1Api(api_client)
        return self._api

    def _read_pod(self, name: str) -> dict | None:
        from kubernetes.client.rest import ApiException

        try:
            pod = self.core.read_namespaced_pod(name, self.namespace)
        except ApiException as exc:
            if exc.status == _NOT_FOUND:
                return None
            raise BackendError(f"Cannot read the pod {name}: {exc.reason}") from exc
        return self.core.api_client.sanitize_for_serialization(pod)

    # --- images: built on Docker, pushed to the cluster's registry --------------------------
    def resolve_image(self, image: str) -> str:
        self.docker.resolve_image(image)
        return self._publish(image)

    def build(self, build: BuildSpec, *, log: Callable[[str], None], should_stop: Callable[[], bool]) -> str:
        self.docker.build(build, log=log, should_stop=should_stop)
        return self._publish(build.tag, log=log)

    def _publish(self, image: str, *, log: Callable[[str], None] | None = None) -> str:
        """`registry/acc/<name>@sha256:...` of a local image, pushed unless the registry has it already."""
        if not self.registry:
            raise ImageNotFound("The kubernetes backend needs ACC_K8S_REGISTRY (where pods pull images from).")
        found = self.docker.client.images.get(image)
        repo = f"{self.registry}/acc/{_repo_name(image)}"
        for digest in found.attrs.get("RepoDigests") or []:
            if digest.startswith(repo + "@") and self._in_registry(digest):
                return digest
        tag = found.id.split(":")[-1][:20]
        found.tag(repo, tag=tag)
        if log:
            log(f"Pushing the image to the cluster's registry as {repo}:{tag}.\n")
        error, pushed = None, None
        for item in self.docker.client.api.push(repo, tag=tag, stream=True, decode=True):
            error = item.get("error") or error
            pushed = (item.get("aux") or {}).get("Digest") or pushed
        if error or not pushed:
            raise ImageNotFound(f"The image {image} could not be pushed to the registry {self.registry}: {error}")
        return f"{repo}@{pushed}"

    def _in_registry(self, reference: str) -> bool:
        """The registry still serves `reference` (repo@digest): the engine remembers a push, but a registry can
        be emptied or collect its garbage since. Asked through the engine (its registry settings and logins);
        a yes is believed for a few minutes."""
        now = time.monotonic()
        if self._seen_in_registry.get(reference, 0.0) > now:
            return True
        try:
            self.docker.client.api.inspect_distribution(reference)
        except Exception:
            self._seen_in_registry.pop(reference, None)
            return False
        self._seen_in_registry[reference] = now + _REGISTRY_BELIEVED
        return True

    def helper_image(self) -> str:
        if self._helper_image is None:
            self._helper_image = self.resolve_image(self.helper_image_name)
        return self._helper_image

    # --- lifecycle ---------------------------------------------------------------------
    def start(self, spec: JobSpec) -> dict:
        """Create the pod (unless a start before this one did) and give it its files; return without waiting
        for the node to start the command (the supervisor's watch sees it start, or the kubelet's reason why it
        cannot), so a worker is not held while a node pulls an image or waits for room."""
        from kubernetes.client.rest import ApiException

        if not spec.image:
            raise ValueError("the kubernetes backend needs an image to run a job")
        sock = km_socket(spec)
        if sock is not None:
            self.check_socket(sock)
        name = km.pod_name(spec.job_id)
        with_files = spec.root_dir.is_dir() and any(spec.root_dir.iterdir())
        claim = self._ensure_pipe(spec.pipe, spec.storage_workflow) if spec.pipe and spec.pipe_shared else None
        manifest = km.pod_manifest(
            spec,
            image=spec.image,
            helper_image=self.helper_image(),
            instance=self.instance,
            pipe_claim=claim,
            with_files=with_files,
            deadline=None if sock is not None else spec.timeout + 300,
            request_fraction=self.request_fraction,
        )
        try:
            self.core.create_namespaced_pod(self.namespace, manifest)
        except ApiException as exc:
            if exc.status != 409:  # 409: a start before this one created it
                raise BackendError(f"Cannot create the pod {name}: {_reason(exc)}") from exc
        if with_files:  # the files container waits for them, the job container for it
            try:
                pod = self._until(name, lambda p: km.container_running(p, km.IN_CONTAINER) or km.job_started(p))
                if km.container_running(pod, km.IN_CONTAINER):
                    self._put_files(name, spec.root_dir)
            except Exception:
                self._delete_pod(name, grace=0)  # a pod without its files must not be taken for a started job
                raise
        return self._state(spec, claim)

    def _state(self, spec: JobSpec, claim: str | None) -> dict:
        state = {"name": km.pod_name(spec.job_id), "job_id": spec.job_id, "outputs": list(spec.outputs)}
        if claim:
            state["pipe"] = claim
        sock = km_socket(spec)
        if sock is not None:
            state["interactive"] = {"kind": sock.kind, "port": sock.port}
        return state

    def _until(self, name: str, ready: Callable[[dict], bool]) -> dict:
        deadline = time.monotonic() + self.start_timeout
        while True:
            pod = self._read_pod(name)
            if pod is None:
                raise BackendError(f"The pod {name} disappeared before it started.")
            if ready(pod) or km.job_exit(pod) is not None:
                return pod
            problem = km.waiting_problem(pod)
            if problem:
                raise ImageNotFound(f"The cluster cannot start the job: {problem}")
            if time.monotonic() > deadline:
                raise BackendError(
                    f"The cluster did not start the pod {name} within {self.start_timeout} s "
                    f"({km.pending_reason(pod)})."
                )
            time.sleep(_POLL)

    def _put_files(self, name: str, root_dir: Path) -> None:
        with tempfile.TemporaryFile() as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                for child in sorted(root_dir.iterdir()):
                    tar.add(child, arcname=child.name, filter=_owned_by_root)
            archive.seek(0)
            script = f"mkdir -p {km.IO}/root && tar -x -C {km.IO}/root && touch {km.IN_DONE}"
            self._exec(name, km.IN_CONTAINER, ["/bin/sh", "-c", script], stdin=archive)

    def _exec(self, name: str, container: str, command: list[str], *, stdin=None, timeout: float = 600) -> bytes:
        """Run `command` in a container of the pod; its stdout. A non-zero exit raises BackendError.

        `stdin` (a file) is fed to the command through `head -c <its size>`: before protocol v5 (Kubernetes
        1.29) an exec's stdin cannot be closed, so without it the command would wait for an end that never
        comes.
        """
        from kubernetes import client
        from kubernetes.stream import stream

        if stdin is not None:
            size = os.fstat(stdin.fileno()).st_size - stdin.tell()
            command = ["/bin/sh", "-c", f'head -c {size} | "$@"', "sh", *command]
        # `stream` swaps the request method of the client it is given for the call's duration: on the shared
        # client, another thread's call meanwhile would go out as a websocket ("Handshake status 200 OK").
        own = client.ApiClient(configuration=self.core.api_client.configuration)
        resp = stream(
            client.CoreV1Api(own).connect_get_namespaced_pod_exec,
            name,
            self.namespace,
            container=container,
            command=command,
            stdin=stdin is not None,
            stdout=True,
            stderr=True,
            tty=False,
            binary=True,
            _preload_content=False,
        )
        out, err = io.BytesIO(), io.BytesIO()
        deadline = time.monotonic() + timeout
        try:
            if stdin is not None:
                while chunk := stdin.read(_EXEC_CHUNK):
                    resp.write_stdin(chunk)
                    _drain(resp, out, err)
            while resp.is_open() and time.monotonic() < deadline:
                resp.update(timeout=1)
                _drain(resp, out, err)
            _drain(resp, out, err)
            code = resp.returncode
        finally:
            resp.close()
            own.close()
        if code not in (0, None):
            text = err.getvalue().decode("utf-8", "replace").strip()
            raise BackendError(f"{' '.join(command[:2])} in {name}/{container} exited with {code}: {text}")
        return out.getvalue()

    def wait(self, state: dict, timeout: float | None) -> Exit | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pod = self._read_pod(state["name"])
            if pod is None:
                return Exit(-1)
            ended = km.job_exit(pod)
            if ended is not None:
                return Exit(ended[0], oom_killed=ended[1])
            problem = km.waiting_problem(pod)
            if problem:
                return Exit(-1, problem=problem)
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(_POLL)

    def logs(self, state: dict) -> Iterator[bytes]:
        try:
            resp = self.core.read_namespaced_pod_log(
                state["name"], self.namespace, container=km.JOB_CONTAINER, follow=True, _preload_content=False
            )
            yield from resp.stream(65536)
        except Exception:
            return

    def stop(self, state: dict, *, grace: float = 10) -> None:
        """TERM to the command (the wrapper passes it on), KILL after `grace`; the pod stays for its outputs.
        A pod whose job container cannot be reached is deleted."""
        pod = self._read_pod(state["name"])
        if pod is None or km.job_exit(pod) is not None:
            return  # ended already
        script = f"kill -TERM 1; sleep {max(0, round(grace))}; kill -KILL -1 2>/dev/null; true"
        try:
            self._exec(state["name"], km.JOB_CONTAINER, ["/bin/sh", "-c", script], timeout=grace + 30)
        except Exception:
            pod = self._read_pod(state["name"])
            if pod is not None and km.job_exit(pod) is None:
                self._delete_pod(state["name"], grace=grace)

    def export(self, state: dict, container_path: str, dest: Path) -> bool:
        name = state["name"]
        if container_path.rstrip("/") == PIPE_MOUNT or container_path.startswith(PIPE_MOUNT + "/"):
            source = container_path
        else:
            index = km.output_index(state.get("outputs") or [], container_path)
            if index is None:
                raise BackendError(f"{container_path} was not declared as an output of this job.")
            source = f"{km.IO}/out/{index}"  # a file's copy sits inside it: its contents are the output
            if self._test(name, f"{km.IO}/out/{index}.missing"):
                return False
        if not self._test(name, source):
            return False
        folder = self._test(name, source, flag="-d")
        if folder:
            data = self._exec(name, km.OUT_CONTAINER, ["tar", "-c", "-C", source, "."])
        else:
            parent, _, base = source.rstrip("/").rpartition("/")
            data = self._exec(name, km.OUT_CONTAINER, ["tar", "-c", "-C", parent or "/", base])
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(dest, filter="data")
        return True

    def _test(self, name: str, path: str, *, flag: str = "-e") -> bool:
        try:
            self._exec(name, km.OUT_CONTAINER, ["test", flag, path])
            return True
        except BackendError:
            return False

    def cleanup(self, state: dict) -> None:
        self.delete(state, grace=0)

    def delete(self, state: dict, *, grace: float) -> None:
        """Delete the job's pod: TERM to its containers, KILL after `grace` (0: at once)."""
        self._delete_pod(state.get("name") or job_name(state["job_id"]), grace=grace)

    def _delete_pod(self, name: str, *, grace: float) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=max(0, round(grace)))
        except ApiException as exc:
            if exc.status != _NOT_FOUND:
                raise BackendError(f"Cannot delete the pod {name}: {_reason(exc)}") from exc

    # --- interactive sessions ---------------------------------------------------------
    def check_socket(self, sock: sockets.Socket) -> None:
        if sock.kind == "unix":
            raise ValueError(
                "The kubernetes backend reaches a session's server over TCP at its pod's address; a Unix socket "
                "cannot be reached there. Listen on 0.0.0.0:<port> and set interactive_socket to that port."
            )
        if sock.loopback_only:
            raise ValueError(
                f"The interactive socket {sock.host}:{sock.port} only listens inside the pod, where the platform "
                f"cannot reach it; listen on 0.0.0.0:{sock.port} instead."
            )

    def endpoint(self, state: dict) -> str | None:
        pod = self._read_pod(state["name"])
        return ((pod or {}).get("status") or {}).get("podIP") or None

    def interactive_address(self, state: dict) -> str | None:
        info = state.get("interactive")
        if not info:
            return None
        ip = self.endpoint(state)
        return sockets.tcp_address(ip, info["port"]) if ip else None

    # --- workflow volumes: one claim per jobflow run ---------------------------------------
    def _ensure_pipe(self, pipe: str, size: int) -> str:
        from kubernetes.client.rest import ApiException

        claim = km.dns_name(pipe)
        try:
            self.core.read_namespaced_persistent_volume_claim(claim, self.namespace)
            return claim
        except ApiException as exc:
            if exc.status != _NOT_FOUND:
                raise BackendError(f"Cannot read the workflow volume {claim}: {_reason(exc)}") from exc
        volume = None
        if not self.pipe_storage_class:  # no provisioner: a hostPath volume of our own (single-node clusters)
            volume_manifest = km.host_volume_manifest(
                pipe,
                instance=self.instance,
                size=size,
                path=f"{self.pipe_host_dir.rstrip('/')}/{claim}",
                storage_class="acc-manual",
            )
            volume = volume_manifest["metadata"]["name"]
            try:
                self.core.create_persistent_volume(volume_manifest)
            except ApiException as exc:
                if exc.status != 409:
                    raise BackendError(f"Cannot create the workflow volume {volume}: {_reason(exc)}") from exc
        manifest = km.pipe_claim_manifest(
            pipe,
            instance=self.instance,
            size=size,
            storage_class=self.pipe_storage_class or "acc-manual",
            volume=volume,
        )
        try:
            self.core.create_namespaced_persistent_volume_claim(self.namespace, manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise BackendError(f"Cannot create the workflow volume {claim}: {_reason(exc)}") from exc
        return claim

    def remove_pipe(self, pipe: str) -> None:
        from kubernetes.client.rest import ApiException

        claim = km.dns_name(pipe)
        helpers = self.core.list_namespaced_pod(self.namespace, label_selector=f"{km.PIPE_LABEL}={claim}")
        for helper in helpers.items:  # left by a worker that died while it read the volume
            self._delete_pod(helper.metadata.name, grace=0)
        for delete, args in (
            (self.core.delete_namespaced_persistent_volume_claim, (claim, self.namespace)),
            (self.core.delete_persistent_volume, (km.dns_name(f"{self.instance}-{pipe}"),)),
        ):
            try:
                delete(*args)
            except ApiException as exc:
                if exc.status != _NOT_FOUND:
                    raise BackendError(f"Cannot remove the workflow volume {claim}: {_reason(exc)}") from exc
        if not self.pipe_storage_class:  # our own hostPath volume: its folder is on this (the only) node
            shutil.rmtree(Path(self.pipe_host_dir) / claim, ignore_errors=True)

    def _has_pipe(self, claim: str) -> bool:
        from kubernetes.client.rest import ApiException

        try:
            self.core.read_namespaced_persistent_volume_claim(claim, self.namespace)
            return True
        except ApiException:
            return False

    @contextmanager
    def _pipe_pod(self, claim: str) -> Iterator[str]:
        """A pod that mounts the claim, for exec; deleted afterwards."""
        from kubernetes.client.rest import ApiException

        name = km.dns_name(f"acc-pipe-{claim}-{int(time.time() * 1000) % 10**9}")
        manifest = km.helper_pod_manifest(
            name, helper_image=self.helper_image(), instance=self.instance, pipe_claim=claim
        )
        try:
            self.core.create_namespaced_pod(self.namespace, manifest)
        except ApiException as exc:
            raise BackendError(f"Cannot reach the workflow volume {claim}: {_reason(exc)}") from exc
        try:
            self._until(name, lambda p: km.container_running(p, km.OUT_CONTAINER))
            yield name
        finally:
            self._delete_pod(name, grace=0)

    def pipe_usage(self, pipe: str, *, image: str | None = None) -> int:
        claim = km.dns_name(pipe)
        if not self._has_pipe(claim):
            return 0
        with self._pipe_pod(claim) as pod:
            out = self._exec(pod, km.OUT_CONTAINER, ["sh", "-c", f"find {PIPE_MOUNT} -type f -exec stat -c %s {{}} +"])
        return sum(int(line) for line in out.decode().split() if line.isdigit())

    def pipe_digests(self, pipe: str, *, image: str | None = None) -> dict[str, str]:
        claim = km.dns_name(pipe)
        if not self._has_pipe(claim):
            return {}
        with self._pipe_pod(claim) as pod:
            out = self._exec(
                pod, km.OUT_CONTAINER, ["sh", "-c", f"cd {PIPE_MOUNT} && find . -type f -exec sha256sum {{}} +"]
            )
        found = {}
        for line in out.decode("utf-8", "replace").splitlines():
            digest, _, path = line.partition("  ")
            if path.startswith("./"):
                found[path[2:]] = digest
        return found

    def load_pipe(self, pipe: str, archive: Path, *, image: str | None = None) -> None:
        claim = self._ensure_pipe(pipe, 1024**3)
        with self._pipe_pod(claim) as pod, open(archive, "rb") as data:
            self._exec(pod, km.OUT_CONTAINER, ["tar", "-x", "-p", "-C", PIPE_MOUNT], stdin=data)

    # --- reconciliation ---------------------------------------------------------------
    def started_state(self, job_id: int) -> dict | None:
        pod = self._read_pod(km.pod_name(job_id))
        if pod is None:
            return None
        has_files = any(c.get("name") == km.IN_CONTAINER for c in pod["spec"].get("initContainers") or [])
        if has_files and not km.job_started(pod):
            return None  # its files may never have come: it is not a started job
        env = {e["name"]: e.get("value", "") for c in pod["spec"]["containers"] for e in c.get("env") or []}
        outputs = [p for p in env.get("ACC_OUTPUTS", "").split("\n") if p]
        state = {"name": km.pod_name(job_id), "job_id": job_id, "outputs": outputs}
        for volume in pod["spec"].get("volumes") or []:
            if volume.get("persistentVolumeClaim"):
                state["pipe"] = volume["persistentVolumeClaim"]["claimName"]
        return state

    def running_job_ids(self) -> set[int]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=km.selector(self.instance))
        ids = (job_id_of(p.metadata.name) for p in pods.items)
        return {i for i in ids if i is not None}

    def stop_by_id(self, job_id: int, *, grace: float = 1) -> None:
        self._delete_pod(km.pod_name(job_id), grace=grace)


def km_socket(spec: JobSpec) -> sockets.Socket | None:
    return sockets.parse_socket(spec.interactive) if spec.interactive else None


def _repo_name(image: str) -> str:
    """A registry repository name for a local image name or id."""
    base = image.split("@")[0]
    base = base.rsplit(":", 1)[0] if ":" in base.rsplit("/", 1)[-1] else base
    return re.sub(r"[^a-z0-9._/-]+", "-", base.lower()).strip("-/") or "image"


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _drain(resp, out: io.BytesIO, err: io.BytesIO) -> None:
    if resp.peek_stdout():
        out.write(resp.read_stdout())
    if resp.peek_stderr():
        err.write(resp.read_stderr())


def _reason(exc) -> str:
    return f"{exc.status} {exc.reason}: {(exc.body or '')[:300]}"

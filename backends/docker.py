"""The `docker` backend: each job is a container on a Docker engine (DOCKER_HOST).

Modelled on JupyterHub's DockerSpawner: deterministic names and labels
(`acc-job-<id>`, `acc.managed=1`, `acc.job=<id>`) so any worker finds what
another started, and every method is safe to repeat. What the container looks
like is decided by the pure functions in `manifests`; this module only talks
to the engine. Inputs are copied in with put_archive before start and outputs
copied out with get_archive after the end, so no host path is ever mounted.

Images: `resolve_image` uses a local image, else pulls it within
ACC_DOCKER_PULL_TIMEOUT seconds (0: never pull; an engine without registry
access fails at once either way). Builds stream the builder's output and are
given up, socket and all, at their timeout or when the job is cancelled.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import queue
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import docker
import requests
import urllib3
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import _create_container_args
from docker.utils.build import tar as build_context_tar

from backends import manifests, sockets
from backends.base import (
    Backend,
    BackendError,
    BuildCancelled,
    BuildFailed,
    BuildSpec,
    BuildTimedOut,
    Exit,
    ImageNotFound,
    JobSpec,
    job_name,
)
from backends.usage import docker_stats_usage

log = logging.getLogger(__name__)

GENERATED_DOCKERFILE = ".acc.Dockerfile"
_GO_MODE_DIR = 1 << 31  # os.ModeDir in the stat header of get_archive
_STOP_CHECK_EVERY = 0.5  # should_stop() may hit the database: not once per build line
_NO_NETWORK = ("", "none", "host")


class DockerBackend(Backend):
    name = "docker"
    uses_images = True

    def __init__(
        self,
        *,
        network: str | None = None,
        pids_limit: int | None = None,
        pull_timeout: float | None = None,
        client: docker.DockerClient | None = None,
    ):
        from django.conf import settings

        self.network = _or(network, settings.ACC_DOCKER_NETWORK)
        self.pids_limit = _or(pids_limit, getattr(settings, "ACC_DOCKER_PIDS_LIMIT", manifests.DEFAULT_PIDS_LIMIT))
        self.pull_timeout = _or(pull_timeout, getattr(settings, "ACC_DOCKER_PULL_TIMEOUT", 600))
        # Containers carry this deployment's name, so a reconciler never removes
        # another deployment's (or test run's) containers on a shared engine.
        self.instance = settings.ACC_INSTANCE
        # Interactive jobs: "" gives each TCP session a network of its own; a name puts them all on that one.
        self.interactive_network = settings.ACC_INTERACTIVE_NETWORK
        self.socket_dir = Path(settings.ACC_INTERACTIVE_SOCKET_DIR)
        self._client = client
        self._max_cores: int | None = None

    # --- engine -----------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        """The shared client, connected on first use so a backend can be built while the engine is down."""
        if self._client is None:
            self._client = self._connect(max_pool_size=32, timeout=120)
        return self._client

    def _connect(self, **kwargs) -> docker.DockerClient:
        try:
            return docker.from_env(**kwargs)
        except DockerException as exc:
            where = os.environ.get("DOCKER_HOST", "the default socket")
            raise BackendError(f"Cannot reach the Docker engine at {where}: {exc}") from exc

    def _cpu_cap(self) -> int | None:
        if self._max_cores is None:
            self._max_cores = int(self.client.info().get("NCPU") or 0)
        return self._max_cores or None

    def _container(self, state: dict):
        """The job's container, found by its deterministic name; None once it is gone."""
        try:
            return self.client.containers.get(state.get("name") or job_name(state["job_id"]))
        except NotFound:
            return None

    # --- images -------------------------------------------------------------------
    def resolve_image(self, image: str) -> str:
        try:
            return self.client.images.get(image).id
        except NotFound:
            pass
        except APIError as exc:  # e.g. an invalid reference
            raise ImageNotFound(f"The image {image} cannot be used: {exc.explanation}")
        if not self.pull_timeout:
            raise ImageNotFound(f"The image {image} is not on this Docker engine and pulling is disabled.")
        try:
            self._pull(image)
            return self.client.images.get(image).id
        except (APIError, BuildFailed) as exc:
            reason = exc.explanation if isinstance(exc, APIError) else str(exc)
            raise ImageNotFound(f"The image {image} is not on this Docker engine and could not be pulled: {reason}")

    def lookup_image(self, image: str) -> str | None:
        try:
            return self.client.api.inspect_image(image)["Id"]
        except (NotFound, APIError):
            return None

    def _pull(self, image: str) -> None:
        repo, tag = docker.utils.parse_repository_tag(image)
        with _Stream(self._connect, timeout=self.pull_timeout, should_stop=lambda: False, what="pull") as stream:
            for item in stream.items(lambda api: api.pull(repo, tag=tag or "latest", stream=True, decode=True)):
                if "error" in item:
                    raise BuildFailed(item["error"])

    def build(self, build: BuildSpec, *, log: Callable[[str], None], should_stop: Callable[[], bool]) -> str:
        """Build `build.tag` unless it exists; the tag hashes all inputs, so an existing one is a cache hit."""
        if not build.force:
            try:
                image = self.client.images.get(build.tag)
                log(f"Using the cached image {build.tag} ({image.short_id}), built before from the same inputs.\n")
                return image.id
            except NotFound:
                pass
        log(f"Building the image {build.tag} ({build.kind}){' without cache' if build.force else ''}.\n")
        error = None
        with ExitStack() as stack:
            kwargs = self._build_kwargs(build, stack)
            stream = stack.enter_context(_Stream(self._connect, timeout=build.timeout, should_stop=should_stop))
            try:
                for item in stream.items(lambda api: api.build(**kwargs)):
                    error = item.get("error") or error
                    text = item.get("stream") or (item["status"] + "\n" if item.get("status") else "")
                    if text:
                        log(text)
            except APIError as exc:  # refused before any output (bad Dockerfile, ...)
                error = exc.explanation or str(exc)
        if error:
            raise BuildFailed(error.strip())
        return self.client.images.get(build.tag).id

    def _build_kwargs(self, build: BuildSpec, stack: ExitStack) -> dict:
        """Arguments of api.build; base_stack sends its generated Dockerfile inside the context tar."""
        common = {
            "tag": build.tag,
            "rm": True,
            "forcerm": True,
            "nocache": build.force,
            "pull": False,
            "decode": True,
            "timeout": build.timeout + 60,
            "labels": {manifests.MANAGED_LABEL: "1"},
        }
        context = build.context_dir
        if not context.is_dir():
            context = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if build.kind == "docker_filename":
            return {**common, "path": str(context), "dockerfile": _dockerfile_in(context, build.dockerfile or "")}
        if build.kind != "base_stack":
            raise BuildFailed(f"Unknown build kind {build.kind!r}.")
        try:
            text = manifests.base_stack_dockerfile(
                base_image=build.base_image or "", workdir=build.workdir, install_command=build.install_command
            )
        except ValueError as exc:
            raise BuildFailed(str(exc))
        ignore = context / ".dockerignore"
        patterns = manifests.parse_dockerignore(ignore.read_text()) if ignore.is_file() else None
        # docker-py's tar adds GENERATED_DOCKERFILE and lists it in .dockerignore: the engine drops it before COPY.
        tar = build_context_tar(str(context), exclude=patterns, dockerfile=(GENERATED_DOCKERFILE, text))
        stack.callback(tar.close)
        return {**common, "fileobj": tar, "custom_context": True, "dockerfile": GENERATED_DOCKERFILE}

    # --- lifecycle ----------------------------------------------------------------
    def start(self, spec: JobSpec) -> dict:
        if spec.pipe:
            self.client.volumes.create(**manifests.pipe_volume_kwargs(spec.pipe))  # returns the existing one
        kwargs = manifests.container_kwargs(
            spec, pids_limit=self.pids_limit, max_cores=self._cpu_cap(), network=self.network
        )
        kwargs["labels"] = {**kwargs.get("labels", {}), INSTANCE_LABEL: self.instance}
        socket_ = manifests.interactive_socket_of(spec)
        if socket_ is not None:
            kwargs = self._prepare_interactive(spec, socket_, kwargs)
        try:
            container = self._create(spec, kwargs)
        except APIError as exc:
            if exc.status_code != 409:
                raise BackendError(f"Cannot create the container {spec.name}: {exc.explanation}")
            # the name is taken: this job was started before (idempotent start) ...
            existing = self._container({"name": spec.name})
            if existing is not None and existing.status != "created":
                return self._state(spec, existing)
            # ... or created but never started (a worker died mid-start): its copy may be partial
            if existing is not None:
                existing.remove(force=True)
            container = self._create(spec, kwargs)
        try:
            self._copy_in(container, spec.root_dir, spec.host_dir)
            container.start()
        except Exception as exc:
            container.remove(force=True)  # a half-prepared container must not be taken for a started job
            if isinstance(exc, APIError):
                raise BackendError(f"Cannot start the container {spec.name}: {exc.explanation}") from exc
            raise
        return self._state(spec, container)

    def _prepare_interactive(self, spec: JobSpec, socket_: sockets.Socket, kwargs: dict) -> dict:
        """Create what an interactive job's server is reached through: its network or its socket folder."""
        self.check_socket(socket_)
        network = self.interactive_network
        if socket_.kind == "tcp" and not network:
            network = manifests.interactive_network_name(self.instance, spec.job_id)
            self._ensure_network(network, spec.job_id)
        host_dir = self._socket_dir(spec.job_id)
        if socket_.kind == "unix":
            host_dir.mkdir(parents=True, exist_ok=True)
            host_dir.chmod(0o1777)  # the server may run as any user in the image
        return manifests.interactive_kwargs(kwargs, socket_, network=network, host_dir=str(host_dir))

    def _ensure_network(self, name: str, job_id: int) -> None:
        """Create the per-job network unless a start before this one did (the engine allows duplicate names)."""
        found = self.client.api.networks(filters={"name": name})  # matches parts of names too
        if any(n["Name"] == name for n in found):
            return
        kwargs = manifests.interactive_network_kwargs(name, job_id=job_id, labels={INSTANCE_LABEL: self.instance})
        try:
            self.client.networks.create(**kwargs)
        except APIError as exc:
            raise BackendError(f"Cannot create the network {name}: {exc.explanation}") from exc

    def _socket_dir(self, job_id: int) -> Path:
        return self.socket_dir / f"{self.instance}-{job_id}"

    def _create(self, spec: JobSpec, kwargs: dict):
        """containers.create() without the inspect it makes afterwards: a round trip saved per job.

        Uses docker-py's own argument conversion (a private helper of the pinned version).
        """
        args = dict(kwargs, version=self.client.api._version)
        try:
            created = self.client.api.create_container(**_create_container_args(args))
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFound(f"The image {spec.image} is not on this Docker engine: {exc.explanation}")
        network = kwargs.get("network_mode") or ""
        return self.client.containers.prepare_model({"Id": created["Id"], "HostConfig": {"NetworkMode": network}})

    def _state(self, spec: JobSpec, container) -> dict:
        state = manifests.state_for(
            spec, container_id=container.id, network=container.attrs["HostConfig"].get("NetworkMode") or ""
        )
        socket_ = manifests.interactive_socket_of(spec)
        if socket_ is not None:
            where = {"port": socket_.port} if socket_.kind == "tcp" else {"path": socket_.path}
            host_path = str(self._socket_dir(spec.job_id) / socket_.name) if socket_.kind == "unix" else ""
            state["interactive"] = {"kind": socket_.kind, **where, "host_path": host_path}
        return state

    def _copy_in(self, container, root_dir: Path, host_dir: Path) -> None:
        """Copy root_dir into the container at "/" (modes kept, owned by root) before it starts."""
        if not root_dir.is_dir() or not any(root_dir.iterdir()):
            return
        with tempfile.TemporaryFile(dir=host_dir if host_dir.is_dir() else None) as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                for child in sorted(root_dir.iterdir()):
                    tar.add(child, arcname=child.name, filter=_owned_by_root)
            archive.seek(0)
            container.put_archive("/", archive)

    # wait, logs, stop and cleanup address the container by name through the
    # low-level API: no inspect round trip before each call.
    def wait(self, state: dict, timeout: float | None) -> Exit | None:
        name = _name_of(state)
        try:
            if timeout is not None and timeout <= 0:
                info = self.client.api.inspect_container(name)["State"]
                return _exit_from(info) if info.get("Status") in ("exited", "dead") else None
            code = int(self.client.api.wait(name, timeout=timeout).get("StatusCode", -1))
            if code == 0:
                return Exit(0)
            return _exit_from(self.client.api.inspect_container(name)["State"])  # was it the OOM killer?
        except NotFound:  # before RequestException: docker's errors are requests HTTPErrors too
            return Exit(-1)  # removed behind our back: it ended, its exit code is lost
        except requests.exceptions.RequestException as exc:
            if _is_read_timeout(exc):
                return None
            raise

    def logs(self, state: dict) -> Iterator[bytes]:
        try:
            yield from self.client.api.logs(_name_of(state), stream=True, follow=True, stdout=True, stderr=True)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
            return  # the container went away while we followed it (NotFound is a RequestException too)

    def usage(self, state: dict) -> tuple[float, int] | None:
        try:
            stats = self.client.api.stats(_name_of(state), stream=False, one_shot=True)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
            return None
        return docker_stats_usage(stats or {})

    def stop(self, state: dict, *, grace: float = 10) -> None:
        try:
            self.client.api.stop(_name_of(state), timeout=max(0, math.ceil(grace)))
        except NotFound:
            pass

    def export(self, state: dict, container_path: str, dest: Path) -> bool:
        container = self._container(state)
        if container is None:
            raise BackendError(f"The container {state.get('name')} is gone; cannot copy {container_path} out of it.")
        try:
            chunks, stat = container.get_archive(container_path)
        except NotFound:
            return False
        dest.mkdir(parents=True, exist_ok=True)
        strip = stat["name"] if stat["mode"] & _GO_MODE_DIR else None
        _extract(chunks, dest, strip=strip)
        return True

    def cleanup(self, state: dict) -> None:
        try:
            self.client.api.remove_container(_name_of(state), force=True, v=True)  # v: anonymous volumes only
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: a removal is already in progress
                raise
        # an interactive job's network and socket folder; a bare state (stop_by_id) may belong to one too
        if "interactive" in state or "id" not in state:
            self._cleanup_interactive(int(state["job_id"]))

    def _cleanup_interactive(self, job_id: int) -> None:
        shutil.rmtree(self._socket_dir(job_id), ignore_errors=True)
        if self.interactive_network:
            return  # a shared network stays
        name = manifests.interactive_network_name(self.instance, job_id)
        for network in self.client.api.networks(filters={"name": name}):
            if network["Name"] == name:  # by id: an engine may hold two networks of one name
                try:
                    self.client.api.remove_network(network["Id"])
                except NotFound:
                    pass

    def endpoint(self, state: dict) -> str | None:
        """The container's IP on its user-defined network (the host reaches it there); None without one."""
        network = state.get("network") or ""
        container = self._container(state) if network not in _NO_NETWORK else None
        if container is None:
            return None
        ip = container.attrs["NetworkSettings"]["Networks"].get(network, {}).get("IPAddress")
        return ip or None

    def check_socket(self, sock: sockets.Socket) -> None:
        if sock.loopback_only:
            raise ValueError(
                f"The interactive socket {sock.host}:{sock.port} only listens inside the container, where the "
                f"platform cannot reach it; listen on 0.0.0.0:{sock.port} instead."
            )

    def interactive_address(self, state: dict) -> str | None:
        """`tcp://<container IP>:<port>` on the job's network, or the host side of its Unix socket."""
        info = state.get("interactive")
        if not info:
            return None
        if info["kind"] == "unix":
            return sockets.unix_address(info["host_path"])
        ip = self.endpoint(state)
        return sockets.tcp_address(ip, info["port"]) if ip else None

    # --- workflow volume & reconciliation -----------------------------------------
    def remove_pipe(self, pipe: str) -> None:
        try:
            self.client.api.remove_volume(pipe)
        except NotFound:
            pass
        except APIError as exc:
            raise BackendError(f"Cannot remove the workflow volume {pipe}: {exc.explanation}")

    def pipe_usage(self, pipe: str, *, image: str | None = None) -> int:
        return sum(size for _name, size, _data in self._pipe_files(pipe, image, read=False))

    def pipe_digests(self, pipe: str, *, image: str | None = None) -> dict[str, str]:
        found = {}
        for name, _size, data in self._pipe_files(pipe, image, read=True):
            digest = hashlib.sha256()
            while chunk := data.read(1 << 20):
                digest.update(chunk)
            found[name] = digest.hexdigest()
        return found

    def _pipe_files(self, pipe: str, image: str | None, *, read: bool) -> Iterator[tuple[str, int, IO | None]]:
        """(path, size, content reader or None) of each regular file in the volume, streamed through the engine."""
        try:
            self.client.api.inspect_volume(pipe)
        except NotFound:
            return
        with self._volume_holder(pipe, image) as holder:
            chunks, stat = self.client.api.get_archive(holder, manifests.PIPE_MOUNT + "/")
            reader = io.BufferedReader(_ChunkReader(chunks), 1 << 20)
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    name = manifests.export_member_path(member.name, stat["name"])
                    if name is not None and member.isfile():
                        yield name, member.size, tar.extractfile(member) if read else None

    def load_pipe(self, pipe: str, archive: Path, *, image: str | None = None) -> None:
        self.client.volumes.create(**manifests.pipe_volume_kwargs(pipe))
        with self._volume_holder(pipe, image) as holder:
            try:
                with open(archive, "rb") as data:
                    self.client.api.put_archive(holder, manifests.PIPE_MOUNT, data)
            except APIError as exc:
                raise BackendError(f"Cannot fill the workflow volume {pipe}: {exc.explanation}") from exc

    @contextmanager
    def _volume_holder(self, pipe: str, image: str | None) -> Iterator[str]:
        """A container that mounts `pipe` and is never started: the engine mounts its volumes for copies."""
        if not image:
            raise BackendError(f"Cannot reach the workflow volume {pipe}: no image to mount it with.")
        created = self.client.api.create_container(
            image=image,
            command=["true"],
            labels={manifests.MANAGED_LABEL: "1", INSTANCE_LABEL: self.instance},
            network_disabled=True,
            host_config=self.client.api.create_host_config(mounts=[manifests.pipe_mount(pipe)]),
        )
        try:
            yield created["Id"]
        finally:
            self.client.api.remove_container(created["Id"], force=True)

    def started_state(self, job_id: int) -> dict | None:
        container = self._container({"job_id": job_id})
        if container is None or container.status == "created":  # never started: its copy-in may be partial
            return None
        network = container.attrs["HostConfig"].get("NetworkMode") or ""
        return {"name": job_name(job_id), "job_id": job_id, "id": container.id, "network": network}

    def running_job_ids(self) -> set[int]:
        """Jobs with a container here, running or exited but not yet cleaned up."""
        filters = manifests.managed_filter()
        filters["label"].append(f"{INSTANCE_LABEL}={self.instance}")
        found = self.client.api.containers(all=True, filters=filters)
        # a per-job interactive network left behind by a worker that died between the two removals
        found += self.client.api.networks(filters=filters)
        ids = (manifests.labels_job_id(c.get("Labels") or {}) for c in found)
        return {i for i in ids if i is not None}


INSTANCE_LABEL = "acc.instance"


# --- helpers ---------------------------------------------------------------------
def _or(value, default):
    return default if value is None else value


def _exit_from(state: dict) -> Exit:
    return Exit(int(state.get("ExitCode", -1)), oom_killed=bool(state.get("OOMKilled")))


def _name_of(state: dict) -> str:
    return state.get("name") or job_name(state["job_id"])


def _is_read_timeout(exc: Exception) -> bool:
    """A wait(timeout=...) that ran out: requests says ReadTimeout over TCP, ConnectionError over a unix socket."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return any(isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args) or "Read timed out" in str(exc)


def _dockerfile_in(context: Path, dockerfile: str) -> str:
    """`dockerfile` relative to the context; a symlink may not lead out of it either."""
    try:
        path = manifests.dockerfile_path(dockerfile)
    except ValueError as exc:
        raise BuildFailed(str(exc))
    inside = (context / path).resolve()
    if not inside.is_relative_to(context.resolve()) or not inside.is_file():
        raise BuildFailed(f"There is no Dockerfile at {dockerfile} in the job folder.")
    return path


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if info.isdir() and info.name in ("tmp", "var/tmp"):
        info.mode = 0o1777  # a mapping into /tmp must not take the sticky world-writable bit away
    return info


class _ChunkReader(io.RawIOBase):
    """A file object over the chunks of get_archive, so tarfile can extract while it downloads."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n], self._buf = self._buf[:n], self._buf[n:]
        return n


def _extract(chunks: Iterator[bytes], dest: Path, *, strip: str | None) -> None:
    """Extract a get_archive stream into dest, refusing anything that would land or point outside it.

    tarfile's "data" filter does the refusing (absolute and `..` paths, links
    leaving dest, device files); a refused member is skipped and logged, the
    rest of the output is kept.
    """
    with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(chunks), 1 << 20), mode="r|") as tar:
        for member in tar:
            name = manifests.export_member_path(member.name, strip)
            link = manifests.export_member_path(member.linkname, strip) if member.islnk() else member.linkname
            if name is None or link is None:
                if member.name.rstrip("/") != strip:
                    log.warning("export: skipped unsafe archive member %r", member.name)
                continue
            try:
                tar.extract(member.replace(name=name, linkname=link, deep=False), dest, filter="data")
            except tarfile.FilterError as exc:
                log.warning("export: skipped %r: %s", member.name, exc)


class _Stream:
    """One streaming engine call (build, pull) on its own connection, given up at its timeout or on should_stop().

    The call runs in a thread because a silent step (`RUN sleep 600`) would
    block us past any deadline. Giving up shuts the socket down: the engine
    sees the client leave and cancels the build, and the reading thread wakes
    (a plain close() does not wake a blocked recv()).
    """

    def __init__(
        self,
        connect: Callable[[], docker.DockerClient],
        *,
        timeout: float,
        should_stop: Callable[[], bool],
        what: str = "build",
    ):
        self.connect, self.timeout, self.should_stop, self.what = connect, timeout, should_stop, what
        self.responses: list = []
        self.done = False
        self.lock = threading.Lock()

    def __enter__(self) -> _Stream:
        self.client = self.connect()
        self.client.api.hooks["response"].append(self._on_response)
        return self

    def __exit__(self, *exc_info) -> None:
        with self.lock:
            self.done = True
        for response in self.responses:
            _sever(response)
        self.client.close()

    def _on_response(self, response, *args, **kwargs) -> None:
        with self.lock:
            self.responses.append(response)
            late = self.done
        if late:  # the answer came after we gave up
            _sever(response)

    def items(self, call: Callable[[docker.APIClient], Iterator[dict]]) -> Iterator[dict]:
        """Yield the decoded items of `call(api)`; raise BuildCancelled / BuildTimedOut when giving up."""
        items: queue.Queue = queue.Queue()

        def pump() -> None:
            try:
                for item in call(self.client.api):
                    items.put(("item", item))
                items.put(("end", None))
            except BaseException as exc:  # handed over to the caller's thread
                items.put(("error", exc))

        threading.Thread(target=pump, name=f"acc-docker-{self.what}", daemon=True).start()
        deadline, next_check = time.monotonic() + self.timeout, 0.0
        while True:
            now = time.monotonic()
            if now >= next_check:
                if self.should_stop():
                    raise BuildCancelled(f"The {self.what} was cancelled.")
                next_check = now + _STOP_CHECK_EVERY
            if now >= deadline:
                raise BuildTimedOut(f"The {self.what} did not finish within {self.timeout:g} s and was stopped.")
            try:
                kind, value = items.get(timeout=min(_STOP_CHECK_EVERY, deadline - now))
            except queue.Empty:
                continue
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value


def _sever(response) -> None:
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    response.close()

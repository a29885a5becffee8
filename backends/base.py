"""The execution-backend interface.

A backend knows *where* a job runs, never *what* a job is: it receives a
frozen JobSpec built by jobs.backend_spec and never imports models. Names are
deterministic (`acc-job-<id>`), so a restarted worker or the reconciler finds
what an earlier process started, and every method is safe to call twice.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from backends.sockets import Socket


class BackendError(Exception):
    """A failure of the backend itself (engine unreachable, ...). Message is for operators."""


class BuildFailed(Exception):
    """The image build failed; the message is the builder's own error, for the user."""


class BuildTimedOut(BuildFailed):
    pass


class BuildCancelled(BuildFailed):
    """should_stop() turned true while building (the job was cancelled)."""


class ImageNotFound(Exception):
    """The image a job asks for is not available; message says which and why."""


def job_name(job_id: int) -> str:
    """The deterministic name of what a backend runs for a job (process group, container, pod)."""
    return f"{_JOB_PREFIX}{job_id}"


def job_id_of(name: str) -> int | None:
    """The job id in a name made by `job_name`; None for any other name."""
    head, _, tail = name.rpartition("-")
    return int(tail) if head + "-" == _JOB_PREFIX and tail.isdigit() else None


_JOB_PREFIX = "acc-job-"


@dataclass(frozen=True)
class Exit:
    exit_code: int
    oom_killed: bool = False
    problem: str = ""  # the engine could not start the command at all (an image it cannot pull): its reason


NOT_STARTED = "not started within"  # how an `Exit.problem` of a job the engine did not start in time begins


@dataclass(frozen=True)
class BuildSpec:
    """An image to build from a job folder.

    kind "docker_filename": `dockerfile` is a path inside `context_dir`.
    kind "base_stack": the backend writes a Dockerfile: FROM base_image,
    copy the folder into `workdir`, run `install_command` there.
    `tag` is derived from the content hash of everything that goes in, so an
    existing tag means the build was already done (unless `force`).
    """

    kind: str
    context_dir: Path
    tag: str
    timeout: int
    force: bool = False
    dockerfile: str | None = None
    base_image: str | None = None
    workdir: str = "/code"
    install_command: str = ""


@dataclass(frozen=True)
class JobSpec:
    """Everything a backend needs to run one job."""

    job_id: int
    command: str
    workdir: str  # path inside the container where the command starts
    host_dir: Path  # the job's own directory on the worker host
    root_dir: Path  # tree mirroring the container filesystem; copied in before start
    image: str | None = None  # None on backends without images (local)
    env: Mapping[str, str] = field(default_factory=dict)
    pipe: str | None = None  # name of the workflow volume, mounted at /mnt/pipe
    pipe_shared: bool = True  # False: a lone job's own volume, which nothing reads after the job's end
    cores: float = 1.0
    ram: int = 512 * 1024**2
    storage_local: int = 2 * 1024**3
    storage_workflow: int = 1024**3
    timeout: int = 3600
    network: str = "none"
    labels: Mapping[str, str] = field(default_factory=dict)
    interactive: str = ""  # conf's interactive_socket: where the job's server listens (see backends.sockets)
    outputs: tuple[str, ...] = ()  # container paths of the output mappings, for backends that gather them at the end

    @property
    def name(self) -> str:
        return job_name(self.job_id)


PIPE_MOUNT = "/mnt/pipe"


class Backend(abc.ABC):
    name: str = "base"
    uses_images: bool = True

    # --- images -------------------------------------------------------------
    def resolve_image(self, image: str) -> str:
        """Return the immutable id of `image` (a digest), or raise ImageNotFound."""
        return image

    def lookup_image(self, image: str) -> str | None:
        """The id of `image` if this engine has it now (never pulls or builds); None otherwise."""
        return None

    def build(self, build: BuildSpec, *, log: Callable[[str], None], should_stop: Callable[[], bool]) -> str:
        """Build (or find) the image for `build`; stream builder output to `log`; return its id."""
        raise BuildFailed(f"the {self.name} backend does not build images")

    # --- lifecycle ------------------------------------------------------------
    @abc.abstractmethod
    def start(self, spec: JobSpec) -> dict:
        """Start the job; idempotent. Returns the state to store with the job, once the engine has it: the
        command may start later (a pod waits for its node), which the backend's `Watcher.started` tells."""

    @abc.abstractmethod
    def wait(self, state: dict, timeout: float | None) -> Exit | None:
        """Block up to `timeout` seconds; the Exit once the job ended, else None."""

    @abc.abstractmethod
    def logs(self, state: dict) -> Iterator[bytes]:
        """Yield output (stdout and stderr) from the start, following until the job ends."""

    @abc.abstractmethod
    def stop(self, state: dict, *, grace: float = 10) -> None:
        """Stop the job (TERM, then KILL after `grace`). "Not found" is success."""

    @abc.abstractmethod
    def export(self, state: dict, container_path: str, dest: Path) -> bool:
        """Copy `container_path` (file or folder) out of the ended job into `dest`.

        A folder's contents land inside `dest`; a file lands at `dest / basename`.
        Returns False when the path does not exist.
        """

    @abc.abstractmethod
    def cleanup(self, state: dict) -> None:
        """Remove what `start` created (container, process group). Idempotent."""

    def endpoint(self, state: dict) -> str | None:
        """The job's own network address (a container IP), if it has one the host can reach."""
        return None

    # --- interactive sessions ---------------------------------------------------
    def check_socket(self, sock: Socket) -> None:
        """Refuse (ValueError, for the user) an interactive socket this backend cannot expose."""
        return None

    def usage(self, state: dict) -> tuple[float, int] | None:
        """(CPU seconds used so far, memory held now) by the running job; None when it cannot be read."""
        return None

    def interactive_address(self, state: dict) -> str | None:
        """Where the platform connects to the job's interactive server: `tcp://host:port` or `unix:///path`.

        None while it cannot be known yet (no container address yet) or for a job without one.
        """
        return None

    # --- workflow volume ------------------------------------------------------
    @abc.abstractmethod
    def remove_pipe(self, pipe: str) -> None:
        """Delete a workflow volume. Idempotent."""

    @abc.abstractmethod
    def pipe_usage(self, pipe: str, *, image: str | None = None) -> int:
        """Bytes held by the regular files of workflow volume `pipe` (0 if it does not exist)."""

    @abc.abstractmethod
    def pipe_digests(self, pipe: str, *, image: str | None = None) -> dict[str, str]:
        """{path: sha256} of every regular file in workflow volume `pipe` now ({} if it does not exist)."""

    @abc.abstractmethod
    def load_pipe(self, pipe: str, archive: Path, *, image: str | None = None) -> None:
        """Unpack a tar `archive` into workflow volume `pipe` (created if missing), keeping modes and times.

        `image` is one the engine has, for backends that need a container to reach a volume.
        """

    # --- reconciliation -------------------------------------------------------
    def started_state(self, job_id: int) -> dict | None:
        """The state of what `start` started for `job_id` (running or ended), found without the state `start`
        returned (its worker died before it could record it); None when nothing was started."""
        return None

    @abc.abstractmethod
    def running_job_ids(self) -> set[int]:
        """Ids of jobs that have something (process, container) on this backend now."""

    def stop_by_id(self, job_id: int, *, grace: float = 1) -> None:
        """Stop and remove whatever this backend runs for `job_id`, found by its deterministic name."""
        state = {"name": job_name(job_id), "job_id": job_id}
        self.stop(state, grace=grace)
        self.cleanup(state)

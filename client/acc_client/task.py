"""WKubeTask: one routine of a jobflow, or a holder that groups routines.

The constructor takes accli's keywords so an existing wkube.py only changes
its import line. Unlike accli, constructing a task does no I/O: the job
folder is uploaded when the flow is dispatched, so importing a wkube.py (or
printing `task.description`) needs no login. Validation happens here, at the
line of wkube.py that is wrong, not later on the server.
"""

from __future__ import annotations

import os
import re
from typing import Any

STACK_KEYS = ("docker_image", "docker_filename", "base_stack")
# accli's job_kwargs, in its order; only the ones the user set are sent.
JOB_KWARGS = (
    "docker_image",
    "repo_url",
    "repo_branch",
    "docker_filename",
    "base_stack",
    "force_build",
    "command",
    "conf",
    "build_timeout",
)
_OTHER_KEYS = (
    "job_folder",
    "include",
    "exclude",
    "required_cores",
    "required_ram",
    "required_storage_local",
    "required_storage_workflow",
    "job_secrets",
    "timeout",
    "conf_schema",
    "deterministic",
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FOLDER_HELP = (
    "job_folder must be an existing directory (relative to wkube.py); 'include' and 'exclude' take "
    "comma-separated wildcards, e.g. include='*.py, data/*', exclude='*.txt, .venv/*'."
)


class WKubeTask:
    """A routine run as a container job, or, with at most `name`, a holder that runs nothing."""

    def __init__(
        self,
        *,
        name: str | None = None,
        job_folder: str | os.PathLike | None = None,
        include: str | None = None,
        exclude: str | None = None,
        docker_image: str | None = None,
        repo_url: str | None = None,
        repo_branch: str | None = None,
        docker_filename: str | None = None,
        base_stack: str | None = None,
        force_build: bool | None = None,
        command: str | None = None,
        conf: dict[str, str] | None = None,
        build_timeout: int | None = None,
        required_cores: float | None = None,
        required_ram: float | None = None,
        required_storage_local: float | None = None,
        required_storage_workflow: float | None = None,
        job_secrets: dict[str, str] | None = None,
        timeout: int | None = None,
        retries: int = 0,
        retry_backoff: float = 10.0,
        conf_schema: dict | None = None,
        deterministic: bool | None = None,
    ):
        given = {k: v for k, v in locals().items() if k in JOB_KWARGS + _OTHER_KEYS and v is not None}
        self.name = _optional_str(name, "name", limit=200)
        self.children: list[WKubeTask] = []
        self.callbacks: list[WKubeTask] = []
        self.is_holder = not given and retries == 0 and retry_backoff == 10.0
        self.kwargs: dict[str, Any] = {}
        self.resources: dict[str, int | float | None] = dict.fromkeys(
            ("required_cores", "required_ram", "required_storage_local", "required_storage_workflow", "timeout")
        )
        self.job_secrets: dict[str, str] = {}
        self.retries, self.retry_backoff = 0, 10.0
        self.folder: tuple[str, str | None, str | None] | None = None
        # the routine version's conf JSON Schema and whether its jobs may be reused, recorded as the web
        # builder's run records them (a wkube.py exported from a saved jobflow then runs the same versions)
        self.spec_extras: dict[str, Any] = {}
        if not self.is_holder:
            self._validate(given, retries, retry_backoff)

    def __repr__(self) -> str:
        kind = "holder" if self.is_holder else "task"
        return f"<WKubeTask {kind} {self.name!r}>"

    # --- the graph -------------------------------------------------------------
    def add_child(self, task: WKubeTask) -> None:
        """Run `task` in parallel with this holder's other children, after the holder's predecessors."""
        self._check_link(task, "add_child")
        if not self.is_holder:
            raise ValueError(
                f"add_child() works only on a holder (a WKubeTask with no arguments or only name=); "
                f"{self!r} runs something itself: use add_callback() to run {task!r} after it."
            )
        if task not in self.children:
            self.children.append(task)

    def add_callback(self, task: WKubeTask) -> None:
        """Run `task` after this task and everything under it succeeded; may be called several times."""
        self._check_link(task, "add_callback")
        if task not in self.callbacks:
            self.callbacks.append(task)

    def _check_link(self, task: object, method: str) -> None:
        if not isinstance(task, WKubeTask):
            raise ValueError(f"{method}() takes a WKubeTask from acc_client, got {type(task).__name__}.")
        if task is self:
            raise ValueError(f"{method}(): {self!r} cannot run after itself.")

    @property
    def description(self) -> dict:
        """The DAG this task would dispatch, without uploading job folders (like accli's `.description`)."""
        from acc_client.dag import tree_to_dag

        return tree_to_dag(self)

    @property
    def needs_upload(self) -> bool:
        return self.folder is not None

    # --- validation ------------------------------------------------------------
    def _validate(self, given: dict[str, Any], retries: int, retry_backoff: float) -> None:
        where = f"WKubeTask {self.name!r}" if self.name else "WKubeTask"
        try:
            self._validate_kwargs(given)
            self._validate_numbers(given, retries, retry_backoff)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def _validate_kwargs(self, given: dict[str, Any]) -> None:
        for key in ("docker_image", "repo_url", "repo_branch", "docker_filename", "base_stack", "include", "exclude"):
            _optional_str(given.get(key), key)
        command = given.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ValueError(
                "command is required for a task that runs something, e.g. command='python main.py' "
                "(a holder takes no arguments except name=)."
            )
        stacks = [k for k in STACK_KEYS if given.get(k)]
        if not stacks:
            raise ValueError("a stack is required: docker_image, or base_stack / docker_filename with a job folder.")
        if "docker_image" in stacks and len(stacks) > 1:
            raise ValueError(f"choose one stack, not {' and '.join(stacks)}.")
        if given.get("repo_branch") and not given.get("repo_url"):
            raise ValueError("repo_branch needs repo_url; leave both out to upload the job folder.")
        if given.get("repo_url") and not given.get("repo_branch"):
            raise ValueError("repo_branch (a branch, tag or commit) is required with repo_url.")
        if not isinstance(given.get("force_build", False), bool):
            raise ValueError("force_build must be True or False.")
        if "conf_schema" in given:
            if not isinstance(given["conf_schema"], dict):
                raise ValueError('conf_schema must be a JSON Schema dict, e.g. {"type": "object", "properties": {}}.')
            self.spec_extras["conf_schema"] = given["conf_schema"]
        if "deterministic" in given:
            if not isinstance(given["deterministic"], bool):
                raise ValueError("deterministic must be True or False (False: its jobs are never reused).")
            self.spec_extras["deterministic"] = given["deterministic"]
        self.kwargs = {k: given[k] for k in JOB_KWARGS if k in given}
        if "conf" in given:
            self.kwargs["conf"] = _env_map(given["conf"], "conf", coerce=False)
        self.job_secrets = _env_map(given.get("job_secrets") or {}, "job_secrets", coerce=True)
        # accli uploads the folder unless a repo or an image says where the code is; a folder
        # named explicitly next to docker_image is uploaded too (the server mounts it).
        wants_folder = not given.get("docker_image") or "job_folder" in given
        if not given.get("repo_url") and wants_folder:
            folder = os.fspath(given.get("job_folder", "./"))
            if not os.path.isdir(folder):
                raise ValueError(f"invalid job_folder {folder!r}: not a directory. {_FOLDER_HELP}")
            self.folder = (os.path.abspath(folder), given.get("include"), given.get("exclude"))

    def _validate_numbers(self, given: dict[str, Any], retries: int, retry_backoff: float) -> None:
        if "build_timeout" in given:
            self.kwargs["build_timeout"] = _number(given["build_timeout"], "build_timeout", 1, integral=True)
        if "required_cores" in given:
            self.resources["required_cores"] = float(_number(given["required_cores"], "required_cores", 0.01))
        for key in ("required_ram", "required_storage_local", "required_storage_workflow"):
            if key in given:
                self.resources[key] = int(round(_number(given[key], f"{key} (bytes)", 1)))
        if "timeout" in given:
            self.resources["timeout"] = _number(given["timeout"], "timeout (seconds)", 1, integral=True)
        self.retries = _number(retries, "retries", 0, integral=True)
        self.retry_backoff = float(_number(retry_backoff, "retry_backoff (seconds)", 0))


def _optional_str(value: Any, what: str, *, limit: int = 2000) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise ValueError(f"{what} must be a string of at most {limit} characters, got {value!r}.")
    return value


def _number(value: Any, what: str, minimum: float, *, integral: bool = False) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}.")
    if integral and value != int(value):
        raise ValueError(f"{what} must be a whole number, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum:g}, got {value!r}.")
    return int(value) if integral else value


def _env_map(value: Any, what: str, *, coerce: bool) -> dict[str, str]:
    """conf and job_secrets become environment variables of the job, so keys must be valid names."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a dict of name -> string.")
    out = {}
    for key, val in value.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise ValueError(f"{what} key {key!r} is not a valid environment variable name (letters, digits, _).")
        if coerce and isinstance(val, bool | int | float):
            val = str(val)
        if not isinstance(val, str):
            raise ValueError(f"{what}[{key!r}] must be a string, got {type(val).__name__}.")
        out[key] = val
    return out

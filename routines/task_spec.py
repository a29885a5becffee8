"""Pure validation of what a routine runs (no Django imports).

`normalize_task(node)` turns one accli task node (see the protocol doc) into
the parts the platform stores: the routine version's `spec` (stack, code,
command, default conf, build timeout), the job's conf, secrets, resources
and force_build. Errors raise SpecError with a sentence a user can act on.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass

STACK_KEYS = ("docker_image", "docker_filename", "base_stack")
KNOWN_KWARGS = {*STACK_KEYS, "repo_url", "repo_branch", "force_build", "command", "conf", "build_timeout", "no_cache"}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IMAGE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,299}$")
RESOURCE_FIELDS = {
    "required_cores": ("required_cores", float),
    "required_ram": ("required_ram", int),
    "required_storage_local": ("required_storage_local", int),
    "required_storage_workflow": ("required_storage_workflow", int),
}


@dataclass(frozen=True)
class Limits:
    """The largest values a task may ask for; the operator sets them (settings ACC_MAX_*)."""

    cores: float = 256
    ram: int = 2**40  # bytes
    storage: int = 16 * 2**40  # bytes, each of required_storage_local and required_storage_workflow
    timeout: int = 7 * 24 * 3600  # seconds, timeout and build_timeout
    retries: int = 10  # jobflow nodes
    retry_backoff: float = 24 * 3600  # seconds

    def bounds(self) -> dict[str, tuple[float, float, str, str]]:
        """field -> (minimum, maximum, unit, the setting that raises the maximum)."""
        return {
            "required_cores": (0.01, self.cores, "cores", "ACC_MAX_CORES"),
            "required_ram": (1, self.ram, "bytes", "ACC_MAX_RAM"),
            "required_storage_local": (1, self.storage, "bytes", "ACC_MAX_STORAGE"),
            "required_storage_workflow": (1, self.storage, "bytes", "ACC_MAX_STORAGE"),
            "timeout": (1, self.timeout, "seconds", "ACC_MAX_TIMEOUT"),
            "build_timeout": (1, self.timeout, "seconds", "ACC_MAX_TIMEOUT"),
            "retries": (0, self.retries, "retries", "ACC_MAX_RETRIES"),
            "retry_backoff": (0, self.retry_backoff, "seconds", "ACC_MAX_RETRY_BACKOFF"),
        }


class SpecError(ValueError):
    pass


def canonical_hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _string_map(value, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{what} must be an object of name -> string value.")
    out = {}
    for key, val in value.items():
        if not isinstance(key, str) or not ENV_NAME.match(key):
            raise SpecError(f"{what} key {key!r} is not a valid environment variable name (letters, digits, _).")
        if isinstance(val, bool | int | float):
            val = str(val)
        if not isinstance(val, str):
            raise SpecError(f"{what}[{key!r}] must be a string.")
        if "\x00" in val:
            raise SpecError(f"{what}[{key!r}] contains a NUL byte.")
        out[key] = val
    return out


def parse_stack(kwargs: dict) -> dict:
    given = [k for k in STACK_KEYS if kwargs.get(k)]
    if not given:
        raise SpecError("No stack given: set one of docker_image, docker_filename or base_stack.")
    if "docker_image" in given and len(given) > 1:
        raise SpecError(f"Choose one stack, not {' and '.join(given)}.")
    if "docker_filename" in given:  # a Dockerfile wins over a base stack named beside it
        name = kwargs["docker_filename"]
        if not isinstance(name, str) or name.startswith("/") or ".." in name.split("/") or "\x00" in name:
            raise SpecError("docker_filename must be a relative path inside the job folder, e.g. 'Dockerfile'.")
        return {"kind": "docker_filename", "dockerfile": name}
    if "docker_image" in given:
        image = kwargs["docker_image"]
        if not isinstance(image, str) or not IMAGE_REF.match(image):
            raise SpecError(f"docker_image {image!r} is not a valid image reference.")
        return {"kind": "docker_image", "image": image}
    name = kwargs["base_stack"]
    if not isinstance(name, str):
        raise SpecError("base_stack must be the name of a stack, e.g. PYTHON3_7.")
    return {"kind": "base_stack", "name": name}


def parse_code(kwargs: dict, stack: dict) -> dict:
    url, ref = kwargs.get("repo_url"), kwargs.get("repo_branch")
    if not url:
        if stack["kind"] != "docker_image":
            raise SpecError(f"A {stack['kind']} stack needs code: give repo_url (a job folder or a git repository).")
        return {"kind": "none"}
    if not isinstance(url, str) or (ref is not None and not isinstance(ref, str)):
        raise SpecError("repo_url and repo_branch must be strings.")
    if url.startswith("s3accjobstore://"):
        return {"kind": "jobstore", "url": url, "ref": ref or ""}
    if not ref:
        raise SpecError("repo_branch (a branch, tag or commit) is required with a git repo_url.")
    return {"kind": "git", "url": url, "ref": ref}


def _number(node: dict, key: str, cast, *, limits: Limits):
    """node[key] as `cast` (None when absent), within the bounds of `limits`; else a SpecError naming the fix."""
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"{key} must be a number, got {str(value)[:40]!r}.")
    minimum, maximum, unit, setting = limits.bounds()[key]
    if value < minimum:
        raise SpecError(f"{key} must be at least {minimum:g} {unit}, got {value:g}.")
    if value > maximum:
        raise SpecError(
            f"{key} must be at most {maximum:g} {unit} (the limit of this platform, {setting}), got {value:g}; "
            f"ask for less, or ask the operator to raise {setting}."
        )
    return cast(value)


def _check_schema(schema) -> None:
    from jsonschema import Draft202012Validator, SchemaError

    if not isinstance(schema, dict):
        raise SpecError('conf_schema must be a JSON Schema object, e.g. {"type": "object", "properties": {...}}.')
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise SpecError(f"conf_schema is not a valid JSON Schema: {exc.message}") from None


def normalize_task(node: dict, *, limits: Limits | None = None) -> dict:
    """Split one accli task node into version spec and per-job settings; numbers must be within `limits`."""
    limits = limits or Limits()
    if not isinstance(node, dict):
        raise SpecError("The task must be a JSON object.")
    kwargs = node.get("job_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise SpecError("job_kwargs must be an object.")
    unknown = sorted(set(kwargs) - KNOWN_KWARGS)
    if unknown:
        raise SpecError(f"Unknown job_kwargs field(s): {', '.join(unknown)}.")
    command = kwargs.get("command")
    if not isinstance(command, str) or not command.strip():
        raise SpecError("command is required: the shell command that runs the routine, e.g. 'python main.py'.")
    stack = parse_stack(kwargs)
    code = parse_code(kwargs, stack)
    build_timeout = _number(kwargs, "build_timeout", int, limits=limits)
    conf = _string_map(kwargs.get("conf"), "conf")
    secrets = _string_map(node.get("job_secrets"), "job_secrets")
    resources = {}
    for key, (field, cast) in RESOURCE_FIELDS.items():
        value = _number(node, key, cast, limits=limits)
        if value is not None:
            resources[field] = value
    resources["timeout"] = _number(node, "timeout", int, limits=limits)
    for key in ("retries", "retry_backoff"):  # jobflow nodes; read again from the DAG when a node fails
        _number(node, key, float, limits=limits)
    name = node.get("name") or "unnamed"
    if not isinstance(name, str) or len(name) > 200:
        raise SpecError("name must be a string of at most 200 characters.")
    schema = node.get("conf_schema")
    if schema is not None:
        _check_schema(schema)
    deterministic = node.get("deterministic", True)
    if not isinstance(deterministic, bool):
        raise SpecError("deterministic must be true or false (false: the routine's jobs are never reused).")
    spec = {
        "stack": stack,
        "code": code,
        "command": command,
        "build_timeout": build_timeout,
        "conf": conf,
        "resources": resources,
    }
    if schema is not None:
        spec["conf_schema"] = schema
    if not deterministic:  # only when set, so that existing versions keep their hashes
        spec["deterministic"] = False
    return {
        "name": name.strip() or "unnamed",
        "spec": spec,
        "conf": conf,
        "secrets": secrets,
        "resources": resources,
        "force_build": bool(kwargs.get("force_build") or kwargs.get("no_cache")),
    }

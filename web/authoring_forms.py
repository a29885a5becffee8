"""The authoring forms (new project, members, routine editor, sharing): parse a POST, check its shape.

The routine editor's fields become the same task dict accli sends
(`{"name", "job_kwargs": {...}, "required_cores", ...}`), and every rule
about what a routine may be is left to routines.services.save_routine
(one validation path). Its messages name the task fields they are about
(`required_ram must be at most ...`); `field_of` maps them back to the
form field so the page shows each message next to its field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from django.http import QueryDict

from routines.models import Role
from web.forms import check

MIB, GIB = 2**20, 2**30
MEMORY_UNITS = {"MiB": MIB, "GiB": GIB}
TIME_UNITS = {"minutes": 60, "hours": 3600}
ADVANCED_CONF = ("interactive_socket", "input_mappings", "output_mappings")
STACK_KINDS = ("docker_image", "docker_filename", "base_stack")
CODE_KINDS = ("upload", "git", "none")

_TEXT = {"type": "string", "maxLength": 10_000}
PROJECT_FIELDS = {
    "type": "object",
    "properties": {
        "slug": {"type": "string", "minLength": 1, "maxLength": 64},
        "name": {"type": "string", "maxLength": 200},
        "description": _TEXT,
    },
    "required": ["slug"],
}
MEMBER_FIELDS = {
    "type": "object",
    "properties": {
        "action": {"enum": ["add", "role", "remove"]},
        "username": {"type": "string", "minLength": 1, "maxLength": 150},
        "role": {"enum": list(Role.values)},
    },
    "required": ["action", "username"],
}


def parse_project(post: QueryDict) -> tuple[dict, dict[str, list[str]]]:
    data = {k: post.get(k, "").strip() for k in ("slug", "name", "description")}
    return data, check(PROJECT_FIELDS, data)


def parse_member(post: QueryDict) -> tuple[dict, dict[str, list[str]]]:
    data = {k: post.get(k, "").strip() for k in ("action", "username", "role") if k in post}
    errors = check(MEMBER_FIELDS, data)
    if data.get("action") in ("add", "role") and not data.get("role"):
        errors.setdefault("role", []).append("Choose a role.")
    if "role" in errors:
        errors["role"] = [f"Choose one of: {', '.join(Role.values)}."]
    return data, errors


def parse_name(post: QueryDict, field: str) -> tuple[str, dict[str, list[str]]]:
    """A username or project slug to share with; errors at `field` when empty."""
    name = post.get(field, "").strip()
    what = "a project's slug" if field == "slug" else "a username"
    return name, {} if name else {field: [f"Enter {what}."]}


# --- the routine editor -------------------------------------------------------------------------
@dataclass
class RoutineForm:
    """The editor's values as the page shows them, the task they make, and errors by field."""

    value: dict = field(default_factory=dict)
    task: dict = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        """A message at field `name`; "" (a message about no one field) shows at the top as "form"."""
        self.errors.setdefault(name or "form", []).append(message)


def blank_value() -> dict:
    return {
        "name": "",
        "description": "",
        "stack_kind": "docker_image",
        "docker_image": "",
        "docker_filename": "Dockerfile",
        "base_stack": "",
        "code_kind": "none",
        "repo_url": "",
        "repo_branch": "",
        "git_url": "",
        "git_ref": "",
        "command": "",
        "cores": "1",
        "memory": "",
        "memory_unit": "MiB",
        "storage": "",
        "storage_unit": "GiB",
        "timeout": "",
        "timeout_unit": "minutes",
        "conf": [],
        "conf_schema": "",
        "interactive_socket": "",
        "deterministic": True,
        "input_mappings": "",
        "output_mappings": "",
        "build_timeout": "",
    }


def _number_text(value: float) -> str:
    return f"{value:g}" if not float(value).is_integer() else str(int(value))


def _in_units(amount, units: dict[str, int]) -> tuple[str, str]:
    """Bytes or seconds -> (number text, the largest unit it is a whole multiple of)."""
    if not amount:
        return "", next(iter(units))
    for unit, size in sorted(units.items(), key=lambda item: -item[1]):
        if amount % size == 0:
            return _number_text(amount / size), unit
    unit, size = next(iter(units.items()))
    return _number_text(round(amount / size, 3)), unit


def value_of(routine, spec: dict) -> dict:
    """The editor's values for an existing routine's version spec."""
    value = blank_value()
    stack, code, conf = spec.get("stack") or {}, spec.get("code") or {}, dict(spec.get("conf") or {})
    resources = spec.get("resources") or {}
    value.update(name=routine.name, description=routine.description, command=spec.get("command", ""))
    value["stack_kind"] = stack.get("kind", "docker_image")
    value["docker_image"] = stack.get("image", "") if value["stack_kind"] == "docker_image" else ""
    value["docker_filename"] = stack.get("dockerfile") or "Dockerfile"
    value["base_stack"] = stack.get("name", "") if value["stack_kind"] == "base_stack" else ""
    if code.get("kind") == "jobstore":
        value.update(code_kind="upload", repo_url=code["url"], repo_branch=code.get("ref", ""))
    elif code.get("kind") == "git":
        value.update(code_kind="git", git_url=code["url"], git_ref=code.get("ref", ""))
    cores = resources.get("required_cores")
    value["cores"] = _number_text(cores) if cores else ""
    value["memory"], value["memory_unit"] = _in_units(resources.get("required_ram"), MEMORY_UNITS)
    value["storage"], value["storage_unit"] = _in_units(resources.get("required_storage_local"), MEMORY_UNITS)
    value["timeout"], value["timeout_unit"] = _in_units(resources.get("timeout"), TIME_UNITS)
    if spec.get("build_timeout"):
        value["build_timeout"] = _number_text(round(spec["build_timeout"] / 60, 3))
    for key in ADVANCED_CONF:
        value[key] = conf.pop(key, "")
    value["conf"] = sorted(conf.items())
    if spec.get("conf_schema") is not None:
        value["conf_schema"] = json.dumps(spec["conf_schema"], indent=2)
    value["deterministic"] = spec.get("deterministic") is not False
    return value


def _amount(form: RoutineForm, name: str, scale: float, *, what: str, integer: bool = True):
    text = form.value[name]
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        form.add(name, f"{what} must be a number.")
        return None
    if not math.isfinite(number) or number <= 0:
        form.add(name, f"{what} must be more than 0.")
        return None
    total = number * scale
    return max(1, round(total)) if integer else total


def parse_routine(post: QueryDict) -> RoutineForm:
    """The posted editor -> its values, the task dict for save_routine, and the errors of its shape."""
    form = RoutineForm(value=blank_value())
    for name, default in form.value.items():
        if isinstance(default, str):
            form.value[name] = post.get(name, default if name.endswith("_unit") else "").strip()
    form.value["description"] = post.get("description", "").replace("\r\n", "\n")
    form.value["conf_schema"] = post.get("conf_schema", "").replace("\r\n", "\n")
    form.value["deterministic"] = post.get("deterministic") == "on"
    form.value["conf"] = [
        (k.strip(), v)
        for k, v in zip(post.getlist("conf_key"), post.getlist("conf_value"), strict=False)
        if k.strip() or v
    ]
    _check_choices(form)
    form.task = _task(form)
    return form


def _check_choices(form: RoutineForm) -> None:
    value = form.value
    if not value["name"]:
        form.add("name", "Give the routine a name.")
    if value["stack_kind"] not in STACK_KINDS:
        form.add("stack_kind", "Choose how the routine's stack is made.")
    if value["code_kind"] not in CODE_KINDS:
        form.add("code_kind", "Choose where the routine's code comes from.")
    if value["memory_unit"] not in MEMORY_UNITS:
        form.add("memory", "Choose MiB or GiB.")
    if value["storage_unit"] not in MEMORY_UNITS:
        form.add("storage", "Choose MiB or GiB.")
    if value["timeout_unit"] not in TIME_UNITS:
        form.add("timeout", "Choose minutes or hours.")
    if value["code_kind"] == "upload" and not value["repo_url"]:
        form.add("upload", "Choose a folder and wait until its upload is done.")
    seen = set()
    for key, _ in value["conf"]:
        if not key:
            form.add("conf", "Every default conf row needs a name.")
        elif key in seen:
            form.add("conf", f"The name {key} is listed twice.")
        elif key in ADVANCED_CONF:
            form.add("conf", f"Set {key} in the Advanced section, not in the default conf.")
        seen.add(key)


def _task(form: RoutineForm) -> dict:
    value = form.value
    kwargs: dict = {"command": value["command"]}
    kind = value["stack_kind"]
    if kind == "docker_image":
        kwargs["docker_image"] = value["docker_image"]
    elif kind == "docker_filename":
        kwargs["docker_filename"] = value["docker_filename"]
    elif kind == "base_stack":
        kwargs["base_stack"] = value["base_stack"]
    if value["code_kind"] == "upload" and value["repo_url"]:
        kwargs.update(repo_url=value["repo_url"], repo_branch=value["repo_branch"])
    elif value["code_kind"] == "git":
        kwargs.update(repo_url=value["git_url"], repo_branch=value["git_ref"])
    conf = dict(value["conf"])
    for key in ADVANCED_CONF:
        if value[key]:
            conf[key] = value[key]
    kwargs["conf"] = conf
    build = _amount(form, "build_timeout", 60, what="The build timeout")
    if build is not None:
        kwargs["build_timeout"] = build
    task: dict = {"name": value["name"], "job_kwargs": kwargs}
    cores = _amount(form, "cores", 1, what="Cores", integer=False)
    if cores is not None:
        task["required_cores"] = cores
    amounts = [
        ("memory", "required_ram", MEMORY_UNITS, "Memory"),
        ("storage", "required_storage_local", MEMORY_UNITS, "Storage"),
        ("timeout", "timeout", TIME_UNITS, "The timeout"),
    ]
    for name, key, units, what in amounts:
        amount = _amount(form, name, units.get(value[f"{name}_unit"], 1), what=what)
        if amount is not None:
            task[key] = amount
    if value["conf_schema"].strip():
        try:
            task["conf_schema"] = json.loads(value["conf_schema"])
        except ValueError as exc:
            form.add("conf_schema", f"Line {exc.lineno}, column {exc.colno}: {exc.msg}.")
    if not value["deterministic"]:
        task["deterministic"] = False
    return task


# Which form field a message of save_routine is about: the first pattern it matches wins.
_FIELD_OF = [
    (r"stack needs code", "code_kind"),
    (r"\binteractive_socket\b", "interactive_socket"),
    (r"\bbuild_timeout\b", "build_timeout"),
    (r"\brequired_cores\b", "cores"),
    (r"\brequired_ram\b", "memory"),
    (r"\brequired_storage_local\b", "storage"),
    (r"\btimeout\b", "timeout"),
    (r"\bconf_schema\b", "conf_schema"),
    (r"\bdocker_image\b", "docker_image"),
    (r"\bdocker_filename\b", "docker_filename"),
    (r"\bbase_stack\b|Unknown base_stack", "base_stack"),
    (r"^No stack given|^Choose one stack", "stack_kind"),
    (r"^Input mapping|\binput_mappings\b", "input_mappings"),
    (r"^Output mapping|\boutput_mappings\b", "output_mappings"),
    (r"\bcommand\b", "command"),
    (r"^conf\b|\bconf key\b|^conf\[", "conf"),
    (r"routine named|^name must", "name"),
    (r"\brepo_url\b|\brepo_branch\b|jobstore|manifest|\bgit\b", "code"),
]


def field_of(message: str, value: dict) -> str:
    """The form field a service message is about ("" for the form as a whole)."""
    if message.startswith("Mapping "):  # a pair of either list: find which one holds it
        quoted = re.match(r"Mapping '([^']*)'", message)
        if quoted and quoted.group(1) in value.get("output_mappings", ""):
            return "output_mappings"
        return "input_mappings"
    if message.startswith(("acc://", "Unknown project")) or "acc://" in message:
        return "input_mappings" if value.get("input_mappings") else "output_mappings"
    for pattern, name in _FIELD_OF:
        if re.search(pattern, message):
            if name == "code":
                return {"git": "git_url", "upload": "upload"}.get(value.get("code_kind"), "code_kind")
            return name
    return ""

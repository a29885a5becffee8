"""The hosting pages' forms, checked with jsonschema before a service sees them.

Errors are keyed by the field they belong to, so each message shows next to
its field: editor paths (`root.n`) for the launch conf, `input_<name>` and
`secret_<name>` for inputs and secrets, plain field names elsewhere. The
services check everything again; `field_of` places their messages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from django.http import QueryDict
from jsonschema import Draft202012Validator

from hosting.services import RESERVED_SLUGS
from routines.models import SLUG_RE
from web import schema_form
from web.forms import PATHS, check

NUMBER = {"type": "string", "pattern": r"^$|^[0-9]{1,9}$"}
TEXT = {"type": "string", "maxLength": 50_000}
JSON_TEXT = {"type": "string", "maxLength": 200_000}
SLUG = {"type": "string", "pattern": SLUG_RE}
SCHEMA_FIELDS = ("conf_schema", "inputs_schema", "secrets_schema", "outputs")


def _obj(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _fields(post: QueryDict, schema: dict) -> dict:
    return {name: post.get(name, "").strip() for name in schema["properties"] if name in post}


def _json_fields(data: dict, names, errors: dict) -> dict:
    """The JSON textareas parsed; a blank one is left out (the service then keeps or derives it)."""
    parsed = {}
    for name in names:
        raw = data.get(name, "")
        if not raw:
            continue
        try:
            parsed[name] = json.loads(raw)
        except ValueError as exc:
            errors.setdefault(name, []).append(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
    return parsed


def field_of(message: str, fields=SCHEMA_FIELDS) -> str:
    """The form field a service's message is about ("" for the form as a whole)."""
    for name in fields:
        if message.startswith(name):
            return name
    rules = [
        (r"^Input '([^']+)'", "input_{}"),
        (r"^A hosted model with slug", "slug"),
        (r"^Routine ", "routine"),
        (r"^Job \d+ is not the root", "jobflow"),
        (r"^Give exactly one of routine", "routine"),
        (r"^(Project '|Your role in project)", "project"),
        (r"^tags", "tags"),
        (r"^embed_origins", "embed_origins"),
        (r"^(Selected '|'[^']*' does not fit)", "selected"),
    ]
    for pattern, name in rules:
        match = re.match(pattern, message)
        if match:
            return name.format(*match.groups())
    return ""


# --- publish ---------------------------------------------------------------------------
PUBLISH = _obj(
    {
        "project": {"type": "string", "minLength": 1, "maxLength": 64},
        "routine": NUMBER,
        "jobflow": NUMBER,
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "slug": SLUG,
        "description": TEXT,
        "tags": {"type": "string", "maxLength": 1000},
        "policy": {"enum": ["private", "project", "public", "link"]},
        "embed_origins": {"type": "string", "maxLength": 5000},
        **{name: JSON_TEXT for name in SCHEMA_FIELDS},
        "notes": {"type": "string", "maxLength": 5000},
    },
    ["project", "title", "slug", "policy"],
)


def publish_form(post: QueryDict) -> tuple[dict, dict, dict[str, list[str]]]:
    """(what was posted, the service's `data`, errors by field)."""
    posted = _fields(post, PUBLISH)
    errors = check(PUBLISH, posted)
    if "slug" in errors:
        errors["slug"] = ["Use 1-64 lower-case letters, digits and hyphens, starting and ending with one of them."]
    elif posted.get("slug") in RESERVED_SLUGS:
        errors["slug"] = [f"'{posted['slug']}' is reserved; choose another slug."]
    if bool(posted.get("routine")) == bool(posted.get("jobflow")):
        errors.setdefault("routine", []).append("Choose a routine, or give the root job id of a jobflow run.")
    names = ("slug", "title", "description", "tags", "policy", "embed_origins", "notes")
    data = {k: posted[k] for k in names if k in posted}
    for name in ("routine", "jobflow"):
        data[name] = int(posted[name]) if posted.get(name) and name not in errors else None
    data.update(_json_fields(posted, SCHEMA_FIELDS, errors))
    return posted, data, errors


# --- manage ------------------------------------------------------------------------------
MANAGE = {
    "edit": _obj(
        {
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": TEXT,
            "tags": {"type": "string", "maxLength": 1000},
            "policy": {"enum": ["private", "project", "public", "link"]},
            "embed_origins": {"type": "string", "maxLength": 5000},
            "default_version": NUMBER,
        },
        ["title", "policy"],
    ),
    "version": _obj(
        {
            **{name: JSON_TEXT for name in SCHEMA_FIELDS},
            "notes": {"type": "string", "maxLength": 5000},
            "make_default": {"enum": ["", "on"]},
        },
        [],
    ),
    "status": _obj(
        {
            "number": {"type": "string", "pattern": r"^[0-9]{1,9}$"},
            "status": {"enum": ["active", "deprecated", "archived"]},
            "successor": NUMBER,
        },
        ["number", "status"],
    ),
    "rotate": _obj({}, []),
    "revoke": _obj({}, []),
    "share": _obj(
        {
            "username": {"type": "string", "maxLength": 150},
            "group": {"type": "string", "maxLength": 150},
            "launch": {"enum": ["", "on"]},
        },
        [],
    ),
    "unshare": _obj(
        {"username": {"type": "string", "maxLength": 150}, "group": {"type": "string", "maxLength": 150}}, []
    ),
}


def manage_form(post: QueryDict) -> tuple[str, dict, dict, dict[str, list[str]]]:
    """(action, what was posted, the service's arguments, errors by field) of one manage-page form."""
    action = post.get("action", "")
    schema = MANAGE.get(action)
    if schema is None:
        return action, {}, {}, {"": [f"Unknown action {action!r}."]}
    posted = _fields(post, schema)
    errors = check(schema, posted)
    data: dict = {}
    if action == "edit":
        data = {k: v for k, v in posted.items() if k != "default_version"}
        if posted.get("default_version") and "default_version" not in errors:
            data["default_version"] = int(posted["default_version"])
    elif action == "version":
        data = {"notes": posted.get("notes", ""), "make_default": posted.get("make_default") == "on"}
        data.update(_json_fields(posted, SCHEMA_FIELDS, errors))
    elif action == "status" and not errors:
        successor = int(posted["successor"]) if posted.get("successor") else None
        data = {"number": int(posted["number"]), "status": posted["status"], "successor": successor}
    elif action in ("share", "unshare"):
        data = {"username": posted.get("username", ""), "group": posted.get("group", "")}
        if bool(data["username"]) == bool(data["group"]):
            errors.setdefault("username", []).append("Give a user name or a group name (one of them).")
        if action == "share":
            data["launch"] = posted.get("launch") == "on"
        else:
            data["remove"] = True
    return action, posted, data, errors


def _without_secrets(schema: dict, value, errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """jsonschema quotes the values it refuses; a secret field of the conf schema is never quoted back."""
    hidden = schema_form.secret_fields(schema)
    if not hidden or not isinstance(value, dict):
        return errors
    secrets = [v for k, v in value.items() if k in hidden and isinstance(v, str) and len(v) >= 3]
    out = {}
    for path, messages in errors.items():
        if path.removeprefix("root.") in hidden:
            messages = [m if m == "Required." else "Not valid here (the value is not shown)." for m in messages]
        for secret in secrets:
            messages = [m.replace(secret, "***") for m in messages]
        out[path] = messages
    return out


# --- launch --------------------------------------------------------------------------------
LAUNCH = _obj(
    {
        "version": NUMBER,
        "conf_json": {"type": "string", "maxLength": 1_000_000},
        "project": {"type": "string", "maxLength": 64},
        "selected": {**PATHS, "minItems": 0},
    },
    ["conf_json"],
)
_SECRET_MESSAGES = {
    "required": "Required.",
    "minLength": "Too short.",
    "maxLength": "Too long.",
    "pattern": "Not in the expected form.",
    "type": "Must be text.",
}


@dataclass
class LaunchForm:
    """The posted launch form, checked against one version's schemas. Secret values are never kept for display."""

    version: int | None = None
    value: dict = field(default_factory=dict)
    project: str = ""
    selected: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    uploads: dict = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def first(cls, query: QueryDict) -> LaunchForm:
        """The form as a GET request opens it: the explorer's project and selection."""
        return cls(project=query.get("project", "").strip(), selected=query.getlist("selected"))

    @staticmethod
    def version_of(post: QueryDict) -> int | None:
        raw = post.get("version", "").strip()
        return int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) else None

    @classmethod
    def parse(cls, post: QueryDict, uploads, version) -> LaunchForm:
        raw = {
            "version": post.get("version", "").strip(),
            "conf_json": post.get("conf_json", ""),
            "project": post.get("project", "").strip(),
            "selected": post.getlist("selected"),
        }
        form = cls(version=cls.version_of(post), project=raw["project"], selected=raw["selected"])
        problems = check(LAUNCH, raw)
        if problems:
            form.errors = {"root": [m for ms in problems.values() for m in ms]}
            return form
        try:
            form.value = json.loads(raw["conf_json"] or "{}")
        except ValueError:
            form.errors = {"root": ["The form could not be read; reload the page and try again."]}
            return form
        form.errors = _without_secrets(
            version.conf_schema, form.value, schema_form.validate(version.conf_schema or {"type": "object"}, form.value)
        )
        form._inputs(post, uploads, version.inputs_schema)
        form._secrets(post, version.secrets_schema)
        return form

    def _inputs(self, post: QueryDict, uploads, declared: list[dict]) -> None:
        for item in declared:
            name = item["name"]
            path = post.get(f"input_{name}", "").strip()
            upload = uploads.get(f"upload_{name}") if item["kind"] == "file" else None
            if path and upload is not None:
                self.errors.setdefault(f"input_{name}", []).append("Give a path or upload a file, not both.")
            elif upload is not None:
                self.uploads[name] = upload
            elif path:
                self.inputs[name] = path

    def _secrets(self, post: QueryDict, schema: dict | None) -> None:
        """Secrets are checked here with messages that never repeat a value."""
        if not schema:
            return
        given = {}
        for name in schema.get("properties") or {}:
            value = post.get(f"secret_{name}", "")
            if value != "":
                given[name] = value
        for error in Draft202012Validator(schema).iter_errors(given):
            if error.validator == "required":
                for missing in [n for n in error.validator_value if n not in given]:
                    self.errors.setdefault(f"secret_{missing}", []).append("Required.")
                continue
            name = str(error.absolute_path[0]) if error.absolute_path else "root"
            key = f"secret_{name}" if name != "root" else "root"
            self.errors.setdefault(key, []).append(_SECRET_MESSAGES.get(error.validator, "Not valid here."))
        self.secrets = given

    @property
    def conf(self) -> dict:
        return self.value if isinstance(self.value, dict) else {}

    @property
    def editor_errors(self) -> dict[str, list[str]]:
        """The errors json-editor shows next to its own fields (and "root" above it)."""
        return {k: v for k, v in self.errors.items() if k == "root" or k.startswith("root.")}

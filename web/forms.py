"""Every form a page posts is checked here with jsonschema before a service sees it.

`check(schema, data)` returns errors by field name, so a page can show each
message next to its field. The Run form's conf is checked against the
routine's own schema by `web.schema_form`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from django.http import QueryDict
from jsonschema import Draft202012Validator

from jobs.states import Status
from web import schema_form

NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[^/\\\x00-\x1f]+$"}
PATH = {"type": "string", "maxLength": 1024}
PATHS = {"type": "array", "items": PATH, "minItems": 1, "maxItems": 1000}
ID = {"type": "string", "pattern": r"^[0-9]{1,18}$"}
# A routine id, or `hosted:<slug>` for a hosted model launched on the selection.
LAUNCHABLE = {"type": "string", "pattern": r"^([0-9]{1,18}|hosted:[a-z0-9][a-z0-9-]{0,63})$"}
DATE = {"type": "string", "pattern": r"^$|^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}

_MESSAGES = {
    "minItems": "Select at least one file or folder.",
    "pattern": "Not a valid value here.",
    "minLength": "This field is required.",
    "required": "This field is required.",
}


def check(schema: dict, data: dict) -> dict[str, list[str]]:
    """Errors of `data` by top-level field ("" for the form as a whole)."""
    errors: dict[str, list[str]] = {}
    for error in Draft202012Validator(schema).iter_errors(data):
        if error.validator == "required":
            missing = [n for n in error.validator_value if n not in (error.instance or {})]
            name = missing[0] if missing else ""
        else:
            name = str(error.absolute_path[0]) if error.absolute_path else ""
        message = _MESSAGES.get(error.validator, error.message)
        if name == "name" and error.validator == "pattern":
            message = "A name cannot contain '/' or control characters."
        errors.setdefault(name, []).append(message)
    return errors


def _obj(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


# --- file explorer ----------------------------------------------------------------------
FILE_ACTIONS = {
    "mkdir": _obj({"action": {"const": "mkdir"}, "name": NAME}, ["action", "name"]),
    "rename": _obj({"action": {"const": "rename"}, "path": PATH, "new_name": NAME}, ["action", "path", "new_name"]),
    "move": _obj(
        {"action": {"const": "move"}, "paths": PATHS, "destination": PATH}, ["action", "paths", "destination"]
    ),
    "delete": _obj({"action": {"const": "delete"}, "paths": PATHS}, ["action", "paths"]),
    "launch": _obj(
        {"action": {"const": "launch"}, "paths": PATHS, "routine": LAUNCHABLE}, ["action", "paths", "routine"]
    ),
}


def file_action(post: QueryDict) -> tuple[dict, dict[str, list[str]]]:
    """The explorer's POST as {"action", ...fields}; lists for `paths`; errors by field."""
    action = post.get("action", "")
    schema = FILE_ACTIONS.get(action)
    if schema is None:
        return {}, {"": [f"Unknown action {action!r}."]}
    data = {"action": action}
    for name in schema["properties"]:
        if name == "paths":
            data[name] = post.getlist("paths")
        elif name in post:
            data[name] = post.get(name, "").strip() if name != "destination" else post.get(name, "").strip("/ ")
    return data, check(schema, data)


# --- the Run form -----------------------------------------------------------------------
RUN_FIELDS = _obj(
    {"conf_json": {"type": "string", "maxLength": 1_000_000}, "selected": {**PATHS, "minItems": 0}},
    ["conf_json"],
)


@dataclass
class RunForm:
    """The posted Run form, checked: conf and secrets as strings, errors by json-editor path."""

    value: dict = field(default_factory=dict)
    selected: list[str] = field(default_factory=list)
    force_build: bool = False
    conf: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, post: QueryDict, conf_schema: dict | None) -> RunForm:
        data = {"conf_json": post.get("conf_json", ""), "selected": post.getlist("selected")}
        form = cls(
            selected=[p for p in data["selected"] if isinstance(p, str)], force_build=bool(post.get("force_build"))
        )
        problems = check(RUN_FIELDS, data)
        if problems:
            form.errors = {"root": [m for ms in problems.values() for m in ms]}
            return form
        try:
            form.value = json.loads(data["conf_json"] or "{}")
        except ValueError:
            form.errors = {"root": ["The form could not be read; reload the page and try again."]}
            return form
        schema = schema_form.form_schema(conf_schema)
        form.errors = schema_form.validate(schema, form.value)
        if not form.errors:
            form.conf, form.secrets, form.errors = schema_form.split(conf_schema, form.value)
        return form


RERUN = _obj({"force_build": {"enum": ["", "on"]}}, [])


# --- job list filters --------------------------------------------------------------------
FILTERS = _obj(
    {
        "status": {"type": "array", "items": {"enum": list(Status.values)}},
        "routine": {"type": "string", "pattern": r"^$|^[0-9]{1,18}$"},
        "user": {"type": "string", "maxLength": 150},
        "since": DATE,
        "until": DATE,
        "nodes": {"enum": ["", "on"]},
        "before": {"type": "string", "pattern": r"^$|^[0-9]{1,18}$"},
        "after": {"type": "string", "pattern": r"^$|^[0-9]{1,18}$"},
    },
    [],
)


@dataclass
class JobFilters:
    status: list[str] = field(default_factory=list)
    routine: int | None = None
    user: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    nodes: bool = False
    before: int | None = None
    after: int | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, query: QueryDict) -> JobFilters:
        data = {k: query.get(k, "") for k in FILTERS["properties"] if k != "status" and k in query}
        data["status"] = query.getlist("status")
        errors = check(FILTERS, data)
        filters = cls(errors=errors)
        if "status" not in errors:
            filters.status = data["status"]
        if data.get("routine") and "routine" not in errors:
            filters.routine = int(data["routine"])
        if "user" not in errors:
            filters.user = data.get("user", "").strip()
        for name in ("since", "until"):
            if data.get(name) and name not in errors:
                try:
                    setattr(filters, name, dt.date.fromisoformat(data[name]))
                except ValueError:
                    errors.setdefault(name, []).append("Not a date.")
        filters.nodes = data.get("nodes") == "on"
        for name in ("before", "after"):
            if data.get(name) and name not in errors:
                setattr(filters, name, int(data[name]))
        return filters

    def query(self, **overrides) -> str:
        """The query string of these filters (without paging unless given), for links."""
        from urllib.parse import urlencode

        pairs = [("status", s) for s in self.status]
        for name in ("routine", "user", "since", "until"):
            value = getattr(self, name)
            if value:
                pairs.append((name, str(value)))
        if self.nodes:
            pairs.append(("nodes", "on"))
        pairs += [(k, str(v)) for k, v in overrides.items() if v]
        return urlencode(pairs)

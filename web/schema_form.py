"""The Run form of a routine, as pure functions (no Django imports).

A routine version may carry a JSON Schema of its conf (`conf_schema`); the
page renders it with json-editor and posts the editor's value as JSON. A
routine without one gets a key/value editor (`KV_SCHEMA`). Either way the
server re-validates the posted value with jsonschema and reports errors by
json-editor path (`root.<property>...`), so they show next to their field.

Top-level properties marked `"format": "password"` or `"writeOnly": true`
are secrets: they go to the job's encrypted secrets, never to its conf, and
their values are never put back into a page.

Conf values reach the job as environment variables, so what the form
produces is a map of strings: a string stays as is, anything else becomes
its JSON text (`3`, `true`, `["a"]`).

Some conf keys are the platform's own settings of the routine (its mappings,
its interactive socket: `ROUTINE_SETTINGS`). The page shows them apart, read
only and in full; the key/value editor neither lists them nor accepts them
(the job gets the routine's values, as the conf is merged over its defaults).
"""

from __future__ import annotations

import json
import re

from jsonschema import Draft202012Validator

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

# conf keys the platform reads (README "Jobflows", "Interactive sessions"), with how the page names them
ROUTINE_SETTINGS = {
    "input_mappings": "Input mappings",
    "output_mappings": "Output mappings",
    "interactive_socket": "Interactive socket",
    "interactive_prefix": "Interactive prefix",
}

_ROW = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "Name", "pattern": ENV_NAME, "minLength": 1},
        "value": {"type": "string", "title": "Value"},
    },
    "required": ["name", "value"],
    "additionalProperties": False,
}
KV_SCHEMA = {
    "type": "object",
    "title": "Parameters",
    "properties": {
        "conf": {
            "type": "array",
            "title": "Parameters",
            "format": "table",
            "description": "Environment variables the job gets; the routine's defaults are filled in.",
            # a value may be long (a path list, JSON): a textarea shows all of it, never a cut-off line
            "items": {
                **_ROW,
                "title": "parameter",
                "properties": {
                    **_ROW["properties"],
                    "value": {"type": "string", "title": "Value", "format": "textarea"},
                },
            },
        },
        "secrets": {
            "type": "array",
            "title": "Secrets",
            "format": "table",
            "description": "Stored encrypted and masked in the log; never shown again.",
            "items": {
                **_ROW,
                "title": "secret",
                "properties": {
                    **_ROW["properties"],
                    "value": {"type": "string", "title": "Value", "format": "password"},
                },
            },
        },
    },
    "required": ["conf", "secrets"],
    "additionalProperties": False,
}


def form_schema(conf_schema: dict | None) -> dict:
    """The schema the editor renders: the routine's own, or the key/value editor."""
    return conf_schema if conf_schema else KV_SCHEMA


def secret_fields(conf_schema: dict | None) -> set[str]:
    props = (conf_schema or {}).get("properties") or {}
    return {
        name
        for name, prop in props.items()
        if isinstance(prop, dict) and (prop.get("format") == "password" or prop.get("writeOnly") is True)
    }


def routine_settings(defaults: dict | None) -> list[dict]:
    """The routine's own settings among its default conf, as the page lists them: name, label, full value."""
    return [
        {"name": name, "label": label, "value": to_env((defaults or {})[name])}
        for name, label in ROUTINE_SETTINGS.items()
        if (defaults or {}).get(name) not in (None, "")
    ]


def start_value(conf_schema: dict | None, defaults: dict, given: dict | None = None) -> dict:
    """The editor's first value: the routine's default conf (typed by the schema), then what was posted.

    Secrets are left out whatever their source.
    """
    if not conf_schema:
        rows = given.get("conf") if isinstance(given, dict) else None
        if not isinstance(rows, list):
            rows = [{"name": k, "value": to_env(v)} for k, v in defaults.items() if k not in ROUTINE_SETTINGS]
        return {"conf": rows, "secrets": _blank_secret_rows(given)}
    props = conf_schema.get("properties") or {}
    value = {name: prop["default"] for name, prop in props.items() if isinstance(prop, dict) and "default" in prop}
    for name, raw in defaults.items():
        if name in props:
            value[name] = coerce(raw, props[name])
    for name, raw in (given or {}).items():
        value[name] = raw
    hidden = secret_fields(conf_schema)
    return {k: v for k, v in value.items() if k not in hidden}


def _blank_secret_rows(given) -> list:
    rows = given.get("secrets") if isinstance(given, dict) else None
    if not isinstance(rows, list):
        return []
    return [{"name": r.get("name", ""), "value": ""} for r in rows if isinstance(r, dict)]


def coerce(raw, prop: dict):
    """A stored conf string as the schema's type, when it reads as one; else unchanged."""
    if not isinstance(raw, str) or not isinstance(prop, dict):
        return raw
    kind = prop.get("type")
    try:
        if kind == "integer" and re.fullmatch(r"-?\d+", raw.strip()):
            return int(raw)
        if kind == "number":
            return float(raw) if "." in raw or "e" in raw.lower() else int(raw)
        if kind == "boolean" and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        if kind in ("array", "object"):
            return json.loads(raw)
    except ValueError:
        pass
    return raw


def validate(schema: dict, value) -> dict[str, list[str]]:
    """jsonschema errors of `value`, keyed by json-editor path ("root", "root.n", "root.conf.0.name")."""
    found: dict[str, list[str]] = {}
    for error in Draft202012Validator(schema).iter_errors(value):
        path = ["root", *(str(p) for p in error.absolute_path)]
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [n for n in error.validator_value if n not in error.instance]
            if missing:
                path.append(str(missing[0]))
                found.setdefault(".".join(path), []).append("Required.")
                continue
        found.setdefault(".".join(path), []).append(error.message)
    return found


def to_env(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def split(conf_schema: dict | None, value: dict) -> tuple[dict[str, str], dict[str, str], dict[str, list[str]]]:
    """A validated editor value -> (conf, secrets, errors); errors only for what jsonschema cannot say."""
    if not conf_schema:
        errors: dict[str, list[str]] = {}
        conf = _rows(value.get("conf") or [], "conf", errors)
        secrets = _rows(value.get("secrets") or [], "secrets", errors)
        return conf, secrets, errors
    hidden = secret_fields(conf_schema)
    conf = {k: to_env(v) for k, v in value.items() if k not in hidden and v is not None}
    secrets = {k: to_env(v) for k, v in value.items() if k in hidden and v not in (None, "")}
    return conf, secrets, {}


def _rows(rows: list, key: str, errors: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, row in enumerate(rows):
        if row["name"] in ROUTINE_SETTINGS:
            message = f"'{row['name']}' is set by the routine (shown above the form); it cannot be changed here."
            errors.setdefault(f"root.{key}.{i}.name", []).append(message)
        elif row["name"] in out:
            errors.setdefault(f"root.{key}.{i}.name", []).append(f"'{row['name']}' is given twice.")
        out[row["name"]] = row["value"]
    return out

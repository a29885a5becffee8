"""What a hosted version declares and what a launch brings, checked as pure functions (no Django).

A version declares:

- `conf_schema`: a JSON Schema of an object; it generates the launch form
  and every launch is validated against it.
- `inputs_schema`: a list of inputs the launcher provides, each
  `{"name", "title", "kind": "file" | "folder", "required", "target"}` where
  `target` is the container path the input is copied to (and, for a
  jobflow, `"node"`: the node that reads it).
- `secrets_schema` (optional): a JSON Schema of an object of strings; the
  values go to the job's encrypted secrets.
- `outputs`: a list of `{"path", "name"}` (and `"node"` for a jobflow):
  container paths whose files are stored in the launcher's output folder.
"""

from __future__ import annotations

import posixpath
import re

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from web.schema_form import secret_fields, to_env, validate

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
TAG = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class SchemaProblem(ValueError):
    """A declaration or a launch is wrong; the message says what and how to fix it."""


# --- declarations ---------------------------------------------------------------------
def check_object_schema(schema, what: str) -> dict:
    if schema in (None, {}):
        return {}
    if not isinstance(schema, dict):
        raise SchemaProblem(f'{what} must be a JSON Schema object, e.g. {{"type": "object", "properties": {{}}}}.')
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise SchemaProblem(f"{what} is not a valid JSON Schema: {exc.message}") from None
    if schema.get("type", "object") != "object":
        raise SchemaProblem(f'{what} must describe an object ("type": "object").')
    return schema


def check_secrets_schema(schema) -> dict | None:
    schema = check_object_schema(schema, "secrets_schema")
    for name, prop in (schema.get("properties") or {}).items():
        if not NAME.match(name) or not isinstance(prop, dict) or prop.get("type", "string") != "string":
            raise SchemaProblem(f"secrets_schema property '{name}' must be a string with a plain name.")
    return schema or None


def _container_path(value, what: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or ".." in value.split("/") or "\x00" in value:
        raise SchemaProblem(f"{what} must be an absolute container path without '..', e.g. /code/in/data.csv.")
    if ":" in value or ";" in value:
        raise SchemaProblem(f"{what} must not contain ':' or ';'.")
    normal = "/" + posixpath.normpath(value).lstrip("/")
    if normal == "/":
        raise SchemaProblem(f"{what} must name a file or folder below '/'.")
    return normal + "/" if value.endswith("/") else normal


def check_inputs(inputs, *, nodes: set[str] | None) -> list[dict]:
    if inputs in (None, []):
        return []
    if not isinstance(inputs, list):
        raise SchemaProblem('inputs_schema must be a list of {"name", "kind", "target", "required"} objects.')
    seen, out = set(), []
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise SchemaProblem(f"inputs_schema[{i}] must be an object.")
        name = item.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise SchemaProblem(f"inputs_schema[{i}].name must be a plain name (letters, digits, '_', '-').")
        if name in seen:
            raise SchemaProblem(f"inputs_schema has two inputs named '{name}'.")
        seen.add(name)
        kind = item.get("kind", "file")
        if kind not in ("file", "folder"):
            raise SchemaProblem(f"inputs_schema '{name}'.kind must be 'file' or 'folder'.")
        target = _container_path(item.get("target"), f"inputs_schema '{name}'.target")
        if kind == "folder" and not target.endswith("/"):
            target += "/"
        entry = {
            "name": name,
            "title": str(item.get("title") or name),
            "description": str(item.get("description") or ""),
            "kind": kind,
            "required": bool(item.get("required", True)),
            "target": target,
        }
        entry.update(_node_of(item, nodes, f"inputs_schema '{name}'"))
        out.append(entry)
    return out


def check_outputs(outputs, *, nodes: set[str] | None) -> list[dict]:
    if outputs in (None, []):
        return []
    if not isinstance(outputs, list):
        raise SchemaProblem('outputs must be a list of {"path", "name"} objects, e.g. [{"path": "/code/out/"}].')
    seen, out = set(), []
    for i, item in enumerate(outputs):
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict):
            raise SchemaProblem(f"outputs[{i}] must be an object.")
        path = _container_path(item.get("path"), f"outputs[{i}].path")
        name = item.get("name") or posixpath.basename(path.rstrip("/"))
        if not isinstance(name, str) or not NAME.match(name.replace(".", "_")):
            raise SchemaProblem(f"outputs[{i}].name must be a plain file or folder name.")
        if name in seen:
            raise SchemaProblem(f"outputs has two entries named '{name}'; give each a distinct name.")
        seen.add(name)
        entry = {"path": path, "name": name}
        entry.update(_node_of(item, nodes, f"outputs[{i}]"))
        out.append(entry)
    return out


def _node_of(item: dict, nodes: set[str] | None, what: str) -> dict:
    if nodes is None:
        if item.get("node"):
            raise SchemaProblem(f"{what}.node applies to jobflows only.")
        return {}
    node = item.get("node")
    if node not in nodes:
        raise SchemaProblem(f"{what}.node must be one of the jobflow's nodes: {', '.join(sorted(nodes))}.")
    return {"node": node}


def check_origins(origins) -> list[str]:
    if origins in (None, ""):
        return []
    if isinstance(origins, str):
        origins = [o for o in re.split(r"[\s,]+", origins) if o]
    if not isinstance(origins, list) or not all(isinstance(o, str) and ORIGIN.match(o) for o in origins):
        raise SchemaProblem("embed_origins must be origins like https://portal.example.org (scheme, host, port).")
    return sorted(set(origins))


def check_tags(tags) -> list[str]:
    if tags in (None, ""):
        return []
    if isinstance(tags, str):
        tags = [t for t in re.split(r"[\s,]+", tags) if t]
    if not isinstance(tags, list) or not all(isinstance(t, str) and TAG.match(t.lower()) for t in tags):
        raise SchemaProblem("tags must be short lower-case words (letters, digits, '-'), e.g. climate, crops.")
    return sorted({t.lower() for t in tags})


# --- launches ---------------------------------------------------------------------------
def check_conf(schema: dict, conf) -> dict[str, str]:
    """The launch's conf as the job's environment strings; SchemaProblem names every wrong field.

    A wrong secret field (see `split_secrets`) is named without its value.
    """
    conf = {} if conf is None else conf
    if not isinstance(conf, dict):
        raise SchemaProblem('conf must be a JSON object, e.g. {"n": 3}.')
    if schema:
        errors = validate(schema, conf)
        if errors:
            hidden = secret_fields(schema)
            text = _describe(errors, hidden)
            for value in (conf.get(name) for name in hidden):
                if isinstance(value, str) and len(value) >= 3:  # a message about the whole conf may quote it
                    text = text.replace(value, "***")
            raise SchemaProblem("conf does not match the model's schema: " + text)
    for name in conf:
        if not NAME.match(name) or "-" in name:
            raise SchemaProblem(f"conf key '{name}' must be a plain name (letters, digits, '_').")
    return {k: to_env(v) for k, v in conf.items() if v is not None}


def split_secrets(schema: dict, conf: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(conf, secrets): top-level fields marked `"format": "password"` or `"writeOnly": true` are secrets,
    as on a routine's Run form, and go to the job's encrypted secrets instead of its conf."""
    hidden = secret_fields(schema)
    return (
        {k: v for k, v in conf.items() if k not in hidden},
        {k: v for k, v in conf.items() if k in hidden and v != ""},
    )


def check_secrets(schema: dict | None, secrets) -> dict[str, str]:
    secrets = {} if secrets is None else secrets
    if not isinstance(secrets, dict):
        raise SchemaProblem("secrets must be a JSON object of strings.")
    if not schema:
        if secrets:
            raise SchemaProblem("This model takes no secrets; leave them out.")
        return {}
    errors = validate(schema, secrets)
    if errors:  # never repeat a secret value in an error
        raise SchemaProblem("secrets do not match the model's secrets schema: " + ", ".join(sorted(errors)))
    unknown = set(secrets) - set(schema.get("properties") or {})
    if unknown:
        raise SchemaProblem(f"Unknown secrets: {', '.join(sorted(unknown))}.")
    return {k: v for k, v in secrets.items() if v not in (None, "")}


def _describe(errors: dict[str, list[str]], hidden: set[str] = frozenset()) -> str:
    parts = []
    for path, messages in sorted(errors.items()):
        field = path.removeprefix("root").lstrip(".") or "(the whole conf)"
        if field.split(".")[0] in hidden and messages != ["Required."]:  # jsonschema quotes the value
            messages = ["not valid; the value is secret and not repeated here, see the field's description."]
        parts.append(f"{field}: {' '.join(messages)}")
    return "; ".join(parts)

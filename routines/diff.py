"""What changed between two routine versions, field by field (pure: no Django imports).

`diff_specs(old, new, old_files=None, new_files=None)` compares two version
specs (routines.task_spec) and returns one section per field that differs,
in a fixed order a reader expects (command, stack, code, resources, conf,
schema...). Each section holds lines `(sign, text)`: "-" was, "+" is now,
" " context. Multi-line values (a command, a schema) are compared line by
line; maps (resources, conf, a stack) key by key. When both versions' code
is a jobstore manifest, pass each manifest's files as {path: sha1} and the
code section lists the files added, removed and changed instead of the two
manifest names. The page renders the text escaped.
"""

from __future__ import annotations

import difflib
import json

FIELDS = [
    ("command", "Command"),
    ("stack", "Stack"),
    ("code", "Code"),
    ("resources", "Resources"),
    ("conf", "Default conf"),
    ("conf_schema", "Conf schema"),
    ("build_timeout", "Build timeout"),
    ("deterministic", "Reuse of identical runs"),
]


def _text(value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True)


def _lines(old, new) -> list[tuple[str, str]]:
    """A line diff of two values' text, with a line of context around each change."""
    a, b = _text(old).splitlines() or [""], _text(new).splitlines() or [""]
    out = []
    for group in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_grouped_opcodes(1):
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [(" ", line) for line in a[i1:i2]]
                continue
            out += [("-", line) for line in a[i1:i2]]
            out += [("+", line) for line in b[j1:j2]]
    return out


def _map_lines(old: dict | None, new: dict | None) -> list[tuple[str, str]]:
    old, new = old or {}, new or {}
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            out.append(("-", f"{key} = {_text(old[key])}"))
        elif key not in old:
            out.append(("+", f"{key} = {_text(new[key])}"))
        elif old[key] != new[key]:
            out += [("-", f"{key} = {_text(old[key])}"), ("+", f"{key} = {_text(new[key])}")]
    return out


def _code_lines(old: dict, new: dict, old_files: dict | None, new_files: dict | None) -> list[tuple[str, str]]:
    if old_files is None or new_files is None:
        return _map_lines(old, new)
    out = []
    for path in sorted(set(old_files) | set(new_files)):
        if path not in new_files:
            out.append(("-", f"{path} (removed)"))
        elif path not in old_files:
            out.append(("+", f"{path} (added)"))
        elif old_files[path] != new_files[path]:
            out.append(("~", f"{path} (changed)"))
    return out or [(" ", "the same files; only the manifest's name differs")]


def diff_specs(
    old: dict, new: dict, *, old_files: dict[str, str] | None = None, new_files: dict[str, str] | None = None
) -> list[dict]:
    """Sections [{"field", "label", "lines": [(sign, text)]}] for each field that differs; [] when none."""
    sections = []
    for field, label in FIELDS:
        a, b = old.get(field), new.get(field)
        if field == "deterministic":
            a, b = a is not False, b is not False
        if a == b:
            continue
        if field == "code":
            lines = _code_lines(a or {}, b or {}, old_files, new_files)
        elif isinstance(a, dict | None) and isinstance(b, dict | None) and field != "conf_schema":
            lines = _map_lines(a, b)
        else:
            lines = _lines(a, b)
        sections.append({"field": field, "label": label, "lines": lines})
    return sections


def manifest_sha(spec: dict) -> str | None:
    """The SHA-1 of a spec's jobstore manifest (`s3accjobstore://manifest_<sha1>.json`), else None."""
    code = spec.get("code") or {}
    url = code.get("url") or ""
    prefix, suffix = "s3accjobstore://manifest_", ".json"
    if code.get("kind") == "jobstore" and url.startswith(prefix) and url.endswith(suffix):
        return url[len(prefix) : -len(suffix)]
    return None

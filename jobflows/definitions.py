"""Saved jobflow definitions: check them, turn them into an `acc-dag/1` body or a wkube.py, and back (pure).

A definition ("acc-jobflow/1") is what the builder edits and a JobflowVersion stores:

    {"format": "acc-jobflow/1",
     "nodes": [{"id": "prep", "routine": 12, "version": 3,
                "conf": {"N": "5"},                          # override of the routine's conf (strings)
                "inputs": ["acc://demo/data/a.txt:/code/a.txt"],
                "outputs": ["/code/out/:acc://demo/results/"],
                "pipe_writes": ["/mnt/pipe/prep.txt"],       # what the node says it leaves in the pipe
                "pipe_inputs": {"PREP": "/mnt/pipe/prep.txt"}},  # conf variables set to an upstream's pipe file
               ...],
     "edges": [["prep", "train"], ...]}                     # "train runs after prep"

A node pins one routine version: a saved jobflow runs what it was saved with,
whatever happens to the routine later. The node id is also the task's name in
the exports, so `acc dispatch` of the wkube.py derives the very same node ids
(the client's slug of a name is the name itself for a valid id), and the same
upstream keys: every node is then answered by the build cache.

The wkube.py export and its import (parsed, never executed) are in jobflows.wkube.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict

from jsonschema import Draft202012Validator

from files.mappings import MappingError, parse_input_mappings, parse_output_mappings
from jobflows.dag import NATIVE_FORMAT, DagError, topological_order
from routines.task_spec import ENV_NAME

FORMAT = "acc-jobflow/1"
NODE_ID = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9_])?$")
PIPE = "/mnt/pipe/"
MAX_NODES = 200
RESERVED_CONF = ("input_mappings", "output_mappings")
RESOURCE_KEYS = ("required_cores", "required_ram", "required_storage_local", "required_storage_workflow")
NODE_KEYS = {"id", "routine", "version", "conf", "inputs", "outputs", "pipe_writes", "pipe_inputs"}


class DefinitionError(ValueError):
    """A definition, export or import that cannot be used; `node` names the node it concerns, if one."""

    def __init__(self, message: str, *, node: str | None = None, line: int | None = None):
        super().__init__(message)
        self.node = node
        self.line = line


# --- checking -------------------------------------------------------------------------------
def _fail(message: str, node: str | None = None):
    raise DefinitionError(f"Node {node}: {message}" if node else message, node=node)


def routine_key(node: dict) -> tuple[int, int]:
    return (node["routine"], node["version"])


def normalize(definition, *, specs: dict, file_exists=None, locate=None) -> dict:
    """Check a definition against the pinned routine `specs` ({(routine id, number): {"name", "spec"}}).

    Returns the canonical definition (sorted edges, empty fields dropped).
    `file_exists(url)` tells whether a project file named by an input
    mapping exists; an input no file and no upstream output provides is
    refused. `locate(url)` gives the project path an acc:// URL names (or
    raises ValueError: not in this project), so that `acc://<slug>/x` and
    `acc://x` are the same file. Every error names its node.
    """
    if not isinstance(definition, dict):
        _fail("A jobflow definition must be a JSON object with nodes and edges.")
    raw_nodes = definition.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        _fail("Add at least one routine to the jobflow.")
    if len(raw_nodes) > MAX_NODES:
        _fail(f"A saved jobflow may have at most {MAX_NODES} nodes, this one has {len(raw_nodes)}.")
    nodes = [_node(raw) for raw in raw_nodes]
    ids = [n["id"] for n in nodes]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        _fail(f"the name {repeated[0]!r} is used by two nodes; give each node its own name.", repeated[0])
    edges = _edges(definition.get("edges"), set(ids))
    try:
        order = topological_order(ids, edges)
    except DagError as exc:
        stuck = str(exc).rsplit(": ", 1)[-1].rstrip(".").split(", ")
        _fail(f"this node is part of a cycle ({', '.join(stuck)}): a jobflow cannot run in a circle.", stuck[0])
    by_id = {n["id"]: n for n in nodes}
    ancestors = _ancestors(order, edges)
    for node in nodes:
        found = specs.get(routine_key(node))
        if found is None:
            _fail(f"routine #{node['routine']} v{node['version']} was not found, or you cannot use it.", node["id"])
        _check_conf(node, found["spec"])
        _check_inputs(node, [by_id[a] for a in ancestors[node["id"]]], file_exists, locate or (lambda url: url))
    return {"format": FORMAT, "nodes": nodes, "edges": sorted([list(e) for e in edges])}


def _node(raw) -> dict:
    if not isinstance(raw, dict):
        _fail("Every node must be a JSON object.")
    node_id = raw.get("id")
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        _fail(
            f"node name {node_id!r} is not valid: use 1-64 lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit.",
            node_id if isinstance(node_id, str) else None,
        )
    unknown = sorted(set(raw) - NODE_KEYS)
    if unknown:
        _fail(f"unknown field(s) {', '.join(unknown)}.", node_id)
    for key in ("routine", "version"):
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
            _fail(f"{key} must be a number (the routine and its version this node runs).", node_id)
    node = {"id": node_id, "routine": raw["routine"], "version": raw["version"]}
    node["conf"] = _string_map(raw.get("conf"), "conf override", node_id)
    for key in RESERVED_CONF:
        if key in node["conf"]:
            _fail(f"set {key} through the node's mappings, not its conf.", node_id)
    node["inputs"] = _mappings(raw.get("inputs"), "inputs", node_id, parse_input_mappings)
    node["outputs"] = _mappings(raw.get("outputs"), "outputs", node_id, parse_output_mappings)
    node["pipe_writes"] = sorted(set(_pipe_paths(raw.get("pipe_writes"), node_id)))
    node["pipe_inputs"] = _string_map(raw.get("pipe_inputs"), "pipe inputs", node_id)
    for var, path in node["pipe_inputs"].items():
        _pipe_paths([path], node_id)
        if var in node["conf"]:
            _fail(f"{var} is set both by the conf override and from the pipe; keep one.", node_id)
    return {k: v for k, v in node.items() if v or k in ("id", "routine", "version")}


def _string_map(value, what: str, node_id: str) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        _fail(f"the {what} must be an object of NAME -> text.", node_id)
    for key, val in value.items():
        if not isinstance(key, str) or not re.match(ENV_NAME, key):
            _fail(f"{key!r} in the {what} is not a valid variable name (letters, digits, _).", node_id)
        if not isinstance(val, str):
            _fail(f"{key} in the {what} must be text, got {json.dumps(val)[:80]}.", node_id)
        if "\x00" in val:
            _fail(f"{key} in the {what} contains a NUL byte.", node_id)
    return dict(sorted(value.items()))


def _mappings(value, what: str, node_id: str, parse) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _fail(f"{what} must be a list of mappings.", node_id)
    out = []
    for pair in value:
        if not pair.strip():
            continue
        if ";" in pair:
            _fail(f"one mapping per row in {what}; {pair!r} holds several.", node_id)
        try:
            parse(pair)
        except MappingError as exc:
            _fail(str(exc), node_id)
        out.append(pair.strip())
    return out


def _pipe_paths(value, node_id: str) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _fail("pipe paths must be a list of paths under /mnt/pipe/.", node_id)
    for path in value:
        if not path.startswith(PIPE) or path == PIPE or ".." in path.split("/") or "\x00" in path:
            _fail(f"{path!r} is not a path under {PIPE} (the workflow volume every node shares).", node_id)
    return value


def _edges(value, known: set[str]) -> set[tuple[str, str]]:
    edges = set()
    for edge in value or []:
        if not (isinstance(edge, list | tuple) and len(edge) == 2 and all(isinstance(e, str) for e in edge)):
            _fail(f"A 'runs after' link must be [before, after] node names, got {edge!r}.")
        before, after = edge
        if after not in known:
            _fail(f"runs before {after!r}, which is not a node of this jobflow.", before if before in known else None)
        if before not in known:
            _fail(f"runs after {before!r}, which is not a node of this jobflow.", after)
        if before == after:
            _fail("a node cannot run after itself.", after)
        edges.add((before, after))
    return edges


def _ancestors(order: list[str], edges: set[tuple[str, str]]) -> dict[str, set[str]]:
    parents = defaultdict(set)
    for before, after in edges:
        parents[after].add(before)
    out: dict[str, set[str]] = {}
    for node in order:
        out[node] = set(parents[node]).union(*(out[p] for p in parents[node]))
    return out


def coerce(raw: str, prop) -> object:
    """A conf string as its schema's type, when it reads as one (conf reaches jobs as environment text)."""
    if not isinstance(prop, dict):
        return raw
    kind = prop.get("type")
    try:
        if kind == "integer" and re.fullmatch(r"\s*-?\d+\s*", raw):
            return int(raw)
        if kind == "number" and re.fullmatch(r"\s*-?[\d.]+(e-?\d+)?\s*", raw, re.I):
            return float(raw) if re.search(r"[.e]", raw, re.I) else int(raw)
        if kind == "boolean" and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        if kind in ("array", "object"):
            return json.loads(raw)
    except ValueError:
        pass
    return raw


def _check_conf(node: dict, spec: dict) -> None:
    """Every overridden value must pass its property's schema, and the schema's required fields be set."""
    schema = spec.get("conf_schema")
    if not schema:
        return
    props = schema.get("properties") or {}
    conf = {**(spec.get("conf") or {}), **node.get("conf", {}), **node.get("pipe_inputs", {})}
    for name, raw in {**node.get("conf", {}), **node.get("pipe_inputs", {})}.items():
        if _secret(props.get(name)):
            _fail(
                f"{name} is a secret of this routine: a saved jobflow never stores secrets. Leave it out here; "
                "the routine's jobs get it where secrets are given (the Run form, a job's secrets).",
                node["id"],
            )
        if name not in props:
            if schema.get("additionalProperties") is False:
                _fail(f"{name} is not a setting of this routine (its schema allows {', '.join(props)}).", node["id"])
            continue
        sub = {**props[name], **({"$defs": schema["$defs"]} if "$defs" in schema else {})}
        error = next(iter(Draft202012Validator(sub).iter_errors(coerce(raw, props[name]))), None)
        if error is not None:
            _fail(f"{name}={raw!r} is refused by the routine's schema: {error.message}.", node["id"])
    for name in schema.get("required") or []:
        has_default = isinstance(props.get(name), dict) and "default" in props[name]
        if name not in conf and not _secret(props.get(name)) and not has_default:
            _fail(f"{name} is required by the routine's schema: set it in the conf override.", node["id"])


def _secret(prop) -> bool:
    """A top-level property the Run form treats as a secret (`"format": "password"` or `"writeOnly": true`)."""
    return isinstance(prop, dict) and (prop.get("format") == "password" or prop.get("writeOnly") is True)


def _located(url: str, locate, node_id: str) -> str:
    try:
        return locate(url)
    except ValueError as exc:
        _fail(str(exc), node_id)


def _check_inputs(node: dict, upstream: list[dict], file_exists, locate) -> None:
    for pair in node.get("outputs", []):
        _located(parse_output_mappings(pair)[0].destination, locate, node["id"])
    written = {
        _located(m.destination, locate, u["id"])
        for u in upstream
        for o in u.get("outputs", [])
        for m in parse_output_mappings(o)
    }
    piped = {p for u in upstream for p in u.get("pipe_writes", [])}
    for pair in node.get("inputs", []):
        source = parse_input_mappings(pair)[0].source
        path = _located(source, locate, node["id"])
        if any(path == w.rstrip("/") or (w.endswith("/") and path.startswith(w)) for w in written):
            continue
        if file_exists is not None and not file_exists(source):
            _fail(f"the input {source} is neither a project file nor written by an upstream node.", node["id"])
    for var, path in node.get("pipe_inputs", {}).items():
        if path not in piped:
            _fail(f"{var} reads {path}, which no upstream node says it writes.", node["id"])


# --- to acc-dag/1 -----------------------------------------------------------------------------
def transitive_reduction(order: list[str], edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Keep a->b only when b has no other parent that already runs after a (as the client emits them)."""
    parents = defaultdict(set)
    for a, b in edges:
        parents[b].add(a)
    ancestors = _ancestors(order, edges)
    return {(a, b) for a, b in edges if not any(a in ancestors[p] for p in parents[b] if p != a)}


def _join(base: str, extra: list[str]) -> str:
    return ";".join([p for p in (base or "").split(";") if p.strip()] + extra)


def task_of(node: dict, spec: dict) -> dict:
    """One node as an accli task dict: the pinned version's spec with the node's conf and mappings."""
    conf = {**(spec.get("conf") or {}), **node.get("conf", {}), **node.get("pipe_inputs", {})}
    for key, extra in (("input_mappings", node.get("inputs", [])), ("output_mappings", node.get("outputs", []))):
        if extra:
            conf[key] = _join(conf.get(key, ""), extra)
    stack, code = spec["stack"], spec["code"]
    kwargs: dict = {}
    if stack["kind"] == "docker_image":
        kwargs["docker_image"] = stack["image"]
    elif stack["kind"] == "docker_filename":
        kwargs["docker_filename"] = stack["dockerfile"]
    else:
        kwargs["base_stack"] = stack["name"]
    if code["kind"] != "none":
        kwargs["repo_url"] = code["url"]
        kwargs["repo_branch"] = code.get("ref") or _jobstore_digest(code["url"])
    kwargs["command"] = spec["command"]
    if conf:
        kwargs["conf"] = dict(sorted(conf.items()))
    if spec.get("build_timeout"):
        kwargs["build_timeout"] = spec["build_timeout"]
    resources = spec.get("resources") or {}
    task = {"name": node["id"], "job_kwargs": kwargs}
    task.update({k: resources[k] for k in RESOURCE_KEYS if resources.get(k) is not None})
    if resources.get("timeout") is not None:
        task["timeout"] = resources["timeout"]
    if spec.get("conf_schema") is not None:
        task["conf_schema"] = spec["conf_schema"]
    task["deterministic"] = spec.get("deterministic", True)
    return task


def _jobstore_digest(url: str) -> str:
    found = re.search(r"([0-9a-f]{40})", url)
    return found.group(1) if found else "main"


def to_acc_dag(definition: dict, *, specs: dict, name: str) -> dict:
    """A normalized definition -> the `acc-dag/1` body dispatch_flow takes (and `acc dispatch` would send)."""
    ids = [n["id"] for n in definition["nodes"]]
    edges = {tuple(e) for e in definition["edges"]}
    order = topological_order(ids, edges)
    position = {n: i for i, n in enumerate(order)}
    by_id = {n["id"]: n for n in definition["nodes"]}
    nodes = []
    for node_id in order:
        node = by_id[node_id]
        task = task_of(node, specs[routine_key(node)]["spec"])
        builder = {k: node[k] for k in ("pipe_writes", "pipe_inputs") if node.get(k)}
        nodes.append({"id": node_id, **task, **({"builder": builder} if builder else {})})
    kept = transitive_reduction(order, edges)
    storage = [n["required_storage_workflow"] for n in nodes if n.get("required_storage_workflow") is not None]
    return {
        "format": NATIVE_FORMAT,
        "name": name,
        "required_storage_workflow": max(storage) if storage else None,
        "nodes": nodes,
        "edges": [list(e) for e in sorted(kept, key=lambda e: (position[e[0]], position[e[1]]))],
    }


# --- from acc-dag/1 ---------------------------------------------------------------------------
def runs_same(task: dict, spec: dict) -> bool:
    """Does an accli task run what a routine version's spec runs (stack, code, command, schema)?"""
    kw = task.get("job_kwargs") or {}
    stack, code = spec["stack"], spec["code"]
    same_stack = {
        "docker_image": kw.get("docker_image") == stack.get("image"),
        "docker_filename": kw.get("docker_filename") == stack.get("dockerfile"),
        "base_stack": kw.get("base_stack") == stack.get("name"),
    }[stack["kind"]]
    same_code = (code["kind"] == "none" and not kw.get("repo_url")) or kw.get("repo_url") == code.get("url")
    return (
        same_stack
        and same_code
        and kw.get("command") == spec["command"]
        and (kw.get("build_timeout") or None) == (spec.get("build_timeout") or None)
        and task.get("conf_schema") == spec.get("conf_schema")
        and task.get("deterministic", True) == spec.get("deterministic", True)
    )


def from_acc_dag(dag: dict, *, candidates: list[dict]) -> dict:
    """An `acc-dag/1` body -> a definition; each node is matched to a routine version that runs the same.

    `candidates` are {"routine", "version", "spec"} of the versions the
    importer may use, most preferred first.
    """
    if not isinstance(dag, dict) or dag.get("format") != NATIVE_FORMAT or not isinstance(dag.get("nodes"), list):
        raise DefinitionError(f"Not an {NATIVE_FORMAT} document: it needs format, nodes and edges.")
    nodes = []
    for task in dag["nodes"]:
        if not isinstance(task, dict):
            raise DefinitionError("Every node must be a JSON object.")
        node_id = task.get("id")
        where = f" (wkube.py line {task['line']})" if task.get("line") else ""
        match = next((c for c in candidates if runs_same(task, c["spec"])), None)
        if match is None:
            raise DefinitionError(
                f"Node {node_id}{where}: no routine you can use runs this stack, code and command; "
                "create the routine first, then import again.",
                node=node_id,
            )
        nodes.append(_node_from_task(task, match))
    edges = [list(e) for e in dag.get("edges") or []]
    return {"format": FORMAT, "nodes": nodes, "edges": edges}


def _node_from_task(task: dict, match: dict) -> dict:
    spec = match["spec"]
    defaults = spec.get("conf") or {}
    conf = dict((task.get("job_kwargs") or {}).get("conf") or {})
    builder = task.get("builder") or {}
    pipe_inputs = {k: v for k, v in (builder.get("pipe_inputs") or {}).items() if conf.get(k) == v}
    node = {"id": task.get("id"), "routine": match["routine"], "version": match["version"]}
    for key, field in (("input_mappings", "inputs"), ("output_mappings", "outputs")):
        have = [p.strip() for p in (conf.pop(key, "") or "").split(";") if p.strip()]
        base = [p.strip() for p in (defaults.get(key, "") or "").split(";") if p.strip()]
        extra = have[len(base) :] if have[: len(base)] == base else have
        if extra:
            node[field] = extra
    override = {
        k: v for k, v in conf.items() if k not in pipe_inputs and defaults.get(k) != v and k not in RESERVED_CONF
    }
    if override:
        node["conf"] = override
    if pipe_inputs:
        node["pipe_inputs"] = pipe_inputs
    if builder.get("pipe_writes"):
        node["pipe_writes"] = builder["pipe_writes"]
    return node

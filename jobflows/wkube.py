"""A saved jobflow as a wkube.py for `acc dispatch`, and back (pure; the file is never executed).

Importing parses the file with `ast` and accepts only the shape `to_wkube`
writes: imports of acc_client, assignments of `WKubeTask(...)` calls with
literal keyword values, and `.add_child` / `.add_callback` calls. Anything
else is refused with the line it is on, before anything could run.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict

from jobflows.dag import NATIVE_FORMAT, DagError, topological_order
from jobflows.definitions import NODE_ID, RESOURCE_KEYS, DefinitionError, transitive_reduction

WKUBE_KEYWORDS = {
    "name",
    "docker_image",
    "repo_url",
    "repo_branch",
    "docker_filename",
    "base_stack",
    "force_build",
    "command",
    "conf",
    "build_timeout",
    "required_cores",
    "required_ram",
    "required_storage_local",
    "required_storage_workflow",
    "job_secrets",
    "timeout",
    "retries",
    "retry_backoff",
    "conf_schema",
    "deterministic",
}


# --- to wkube.py -------------------------------------------------------------------------------
def _variable(node_id: str) -> str:
    name = re.sub(r"\W", "_", node_id)
    return f"n_{name}"


def to_wkube(dag: dict, *, project: str, title: str) -> str:
    """An `acc-dag/1` body as a wkube.py for `acc dispatch <project> flow -f wkube.py`."""
    lines = [
        f'"""Jobflow {title!r}, exported from Accelerator.',
        "",
        f"Run it with: acc dispatch {project} flow -f wkube.py",
        "Every node is a routine version pinned by the saved jobflow; the build cache answers",
        'the nodes that ran before with the same code, stack, command, conf and inputs."""',
        "",
        "from acc_client import WKubeTask",
        "",
        f"flow = WKubeTask(name={dag.get('name') or title!r})",
    ]
    for node in dag["nodes"]:
        keywords = {"name": node["id"], **node["job_kwargs"]}
        keywords.update({k: node[k] for k in (*RESOURCE_KEYS, "timeout", "conf_schema", "deterministic") if k in node})
        args = ",\n".join(f"    {k}={_literal(v)}" for k, v in keywords.items())
        lines.append(f"{_variable(node['id'])} = WKubeTask(\n{args},\n)")
    has_parent = {after for _, after in dag["edges"]}
    lines.append("")
    for node in dag["nodes"]:
        if node["id"] not in has_parent:
            lines.append(f"flow.add_child({_variable(node['id'])})")
    for before, after in dag["edges"]:
        lines.append(f"{_variable(before)}.add_callback({_variable(after)})")
    return "\n".join(lines) + "\n"


def _literal(value) -> str:
    """Python source of a JSON value (true/false/null spelled the Python way)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


# --- from wkube.py (parsed, never executed) ---------------------------------------------------
class _Task:
    def __init__(self, variable: str, keywords: dict, line: int):
        self.variable, self.keywords, self.line = variable, keywords, line
        self.children: list[_Task] = []
        self.callbacks: list[_Task] = []
        self.is_holder = set(keywords) <= {"name"}


def _refuse(node: ast.AST, message: str):
    line = getattr(node, "lineno", None)
    raise DefinitionError(f"wkube.py line {line}: {message}", line=line)


def parse_wkube(source: str) -> dict:
    """A wkube.py of the exported shape -> `acc-dag/1` body. Nothing in it is executed."""
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        raise DefinitionError(f"wkube.py line {exc.lineno}: not valid Python ({exc.msg}).", line=exc.lineno) from None
    except (RecursionError, MemoryError, ValueError):  # absurd nesting, NUL bytes: nothing an export writes
        raise DefinitionError("wkube.py is nested too deeply or holds NUL bytes; it is not of the exported shape.")
    tasks: dict[str, _Task] = {}
    for i, stmt in enumerate(module.body):
        if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the docstring
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "acc_client" and stmt.level == 0:
            if any(a.name != "WKubeTask" or a.asname for a in stmt.names):
                _refuse(stmt, "only 'from acc_client import WKubeTask' is accepted.")
            continue
        if isinstance(stmt, ast.Assign):
            _assignment(stmt, tasks)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            _link(stmt.value, tasks)
        else:
            _refuse(stmt, f"{type(stmt).__name__} is not accepted; only WKubeTask(...) and add_child/add_callback.")
    if "flow" not in tasks:
        raise DefinitionError("wkube.py has no 'flow = WKubeTask(...)': the variable `acc dispatch` runs.")
    return _tree_to_dag(tasks["flow"], tasks)


def _assignment(stmt: ast.Assign, tasks: dict) -> None:
    if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
        _refuse(stmt, "assign a WKubeTask to one plain variable name.")
    call = stmt.value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "WKubeTask"):
        _refuse(stmt, "only WKubeTask(...) may be assigned.")
    if call.args:
        _refuse(stmt, "WKubeTask takes keyword arguments only.")
    keywords = {}
    for kw in call.keywords:
        if kw.arg is None or kw.arg not in WKUBE_KEYWORDS:
            _refuse(kw.value, f"WKubeTask keyword {kw.arg or '**'} is not accepted here.")
        try:
            keywords[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            _refuse(kw.value, f"{kw.arg}= must be a literal value (text, number, True/False, list or dict).")
    name = stmt.targets[0].id
    if name in tasks:
        _refuse(stmt, f"{name} is assigned twice.")
    tasks[name] = _Task(name, keywords, stmt.lineno)


def _link(call: ast.Call, tasks: dict) -> None:
    func = call.func
    if not (
        isinstance(func, ast.Attribute)
        and func.attr in ("add_child", "add_callback")
        and isinstance(func.value, ast.Name)
        and len(call.args) == 1
        and isinstance(call.args[0], ast.Name)
        and not call.keywords
    ):
        _refuse(call, "only <task>.add_child(<task>) and <task>.add_callback(<task>) calls are accepted.")
    parent, child = func.value.id, call.args[0].id
    for name in (parent, child):
        if name not in tasks:
            _refuse(call, f"{name} is not a WKubeTask assigned above.")
    if func.attr == "add_child":
        if not tasks[parent].is_holder:
            _refuse(call, f"add_child works only on a holder (a WKubeTask with only name=); {parent} runs something.")
        tasks[parent].children.append(tasks[child])
    else:
        tasks[parent].callbacks.append(tasks[child])


def _tree_to_dag(root: _Task, tasks: dict[str, _Task]) -> dict:
    """The client's semantics: holder children run in parallel; a callback runs after all under its task."""
    reached: list[_Task] = []
    stack = [root]
    while stack:
        task = stack.pop()
        if task not in reached:
            reached.append(task)
            stack.extend(reversed(task.children + task.callbacks))
    under: dict[str, set[str]] = {}
    done: dict[str, set[str]] = {}

    def walk(task: _Task, path: tuple[str, ...]) -> None:
        if task.variable in done:
            return
        if task.variable in path:
            raise DefinitionError(
                f"wkube.py line {task.line}: add_child/add_callback form a loop through {task.variable}."
            )
        for sub in task.children + task.callbacks:
            walk(sub, (*path, task.variable))
        own = set() if task.is_holder else {task.variable}
        under[task.variable] = own.union(*(done[c.variable] for c in task.children))
        done[task.variable] = under[task.variable].union(*(done[c.variable] for c in task.callbacks))

    walk(root, ())
    start: dict[str, set[str]] = defaultdict(set)
    changed = True
    while changed:  # start sets flow from attachers to what they attach; small graphs, a fixpoint is enough
        changed = False
        for task in reached:
            for child in task.children:
                changed |= _grow(start, child.variable, start[task.variable])
            for callback in task.callbacks:
                changed |= _grow(start, callback.variable, under[task.variable] or start[task.variable])
    real = [t for t in reached if not t.is_holder]
    names = {}
    for task in real:
        name = task.keywords.get("name")
        if not isinstance(name, str) or not NODE_ID.match(name):
            raise DefinitionError(
                f"wkube.py line {task.line}: name={name!r} must be a node name (lower-case letters, digits, _ and -).",
                line=task.line,
            )
        if name in names.values():
            raise DefinitionError(f"wkube.py line {task.line}: the name {name!r} is used twice.", line=task.line)
        names[task.variable] = name
    if not real:
        raise DefinitionError("wkube.py: the flow has no task that runs anything.")
    edges = {(names[p], names[t.variable]) for t in real for p in start[t.variable] if p in names}
    if any(a == b for a, b in edges):
        raise DefinitionError("wkube.py: a task would have to run after itself.")
    ids = [names[t.variable] for t in real]
    try:
        order = topological_order(ids, edges)
    except DagError as exc:
        raise DefinitionError(f"wkube.py: {exc}") from None
    line_of = {names[t.variable]: t.line for t in real}
    nodes = []
    for node_id in order:
        kw = dict(tasks[next(v for v, n in names.items() if n == node_id)].keywords)
        job_kwargs = {k: kw.pop(k) for k in list(kw) if k in _JOB_KWARGS}
        kw.pop("name", None)
        nodes.append({"id": node_id, "name": node_id, "job_kwargs": job_kwargs, **kw, "line": line_of[node_id]})
    kept = transitive_reduction(order, edges)
    return {
        "format": NATIVE_FORMAT,
        "name": root.keywords.get("name"),
        "nodes": nodes,
        "edges": sorted(map(list, kept)),
    }


_JOB_KWARGS = (
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


def _grow(start: dict[str, set[str]], key: str, more: set[str]) -> bool:
    if more <= start[key]:
        return False
    start[key] |= more
    return True

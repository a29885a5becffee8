"""The rooms of the house and the direction of their imports (README, "Code map"; docs/architecture.md).

Every Python module of the project's apps is parsed; every import counts,
also one inside a function or a method. A module may import modules of its
own room and of rooms lower in `HOUSE`; a room that must cause something
above it does so through a callback registered at start, a signal or a
queued task. No import circle may join modules of different rooms.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# lowest first; rooms on one line are peers and may import each other (never in a circle of modules)
HOUSE: list[tuple[str, ...]] = [
    ("accelerator",),  # settings helpers, errors, crypto, parsers, guards: imports no room
    ("backends",),  # local, docker: execution engines; no Django models
    ("routines", "files", "accounts"),  # projects, roles, routines and versions; project files; sign-in tokens
    ("jobs",),  # job records, their one status writer, events, logs, permissions, session records
    ("builds",),  # the build-system cache
    ("jobflows",),  # DAGs and their runs
    ("workers",),  # dispatch, the runner, cancel, the reconciler, the job API
    ("interactive",),  # session access, the reverse proxy, the session API
    ("web",),  # server-rendered pages
    ("hosting",),  # hosted models
    ("accelerator.urls", "accelerator.asgi", "accelerator.wsgi"),  # the wiring: mounts every room
]
RANK = {room: rank for rank, rooms in enumerate(HOUSE) for room in rooms}


def room_of(module: str) -> str | None:
    """The most specific room a dotted module name belongs to."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in RANK:
            return name
    return None


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for top in {room.split(".")[0] for room in RANK}:
        for path in (root / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in `path` (module level, functions, methods)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    wrong = []
    for source, targets in edges.items():
        for target in targets:
            a, b = room_of(source), room_of(target)
            if RANK[b] > RANK[a]:
                wrong.append(f"{source} ({a}) imports {target} ({b}), a room above it")
    return sorted(wrong)


def cycles_across_rooms(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of modules that span more than one room (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len({room_of(m) for m in group}) > 1:
                    groups.append(sorted(group))
    return groups


def test_every_module_of_an_app_belongs_to_a_room():
    apps = {p.parent.name for p in ROOT.glob("*/apps.py")}
    assert apps <= set(RANK), f"apps missing from HOUSE: {sorted(apps - set(RANK))}"


def test_no_room_imports_one_above_it():
    assert upward_imports(graph()) == []


def test_no_import_circle_joins_modules_of_different_rooms():
    assert cycles_across_rooms(graph()) == []


@pytest.fixture
def tree(tmp_path):
    def write(files: dict[str, str]) -> Path:
        for relpath, text in files.items():
            path = tmp_path / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return tmp_path

    return write


def test_the_check_sees_an_upward_import_inside_a_function(tree):
    root = tree(
        {
            "jobs/__init__.py": "",
            "jobs/services.py": "def enqueue():\n    from workers.tasks import run_job_task\n",
            "workers/__init__.py": "",
            "workers/tasks.py": "from jobs import services\n",
        }
    )
    edges = graph(root)
    assert upward_imports(edges) == ["jobs.services (jobs) imports workers.tasks (workers), a room above it"]
    assert cycles_across_rooms(edges) == [["jobs.services", "workers.tasks"]]


def test_the_check_allows_peers_and_circles_inside_one_room(tree):
    root = tree(
        {
            "routines/__init__.py": "",
            "routines/services.py": "from files import code\n",
            "files/__init__.py": "",
            "files/code.py": "from routines.models import Project\n",
            "routines/models.py": "",
            "jobs/__init__.py": "",
            "jobs/models.py": "def f():\n    from jobs import states\n",
            "jobs/states.py": "from .models import f\n",
        }
    )
    edges = graph(root)
    assert upward_imports(edges) == [] and cycles_across_rooms(edges) == []

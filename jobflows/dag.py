"""Pure DAG logic for jobflows (no Django imports).

Two inputs become one native shape, {"nodes": [...], "edges": [[before, after], ...]}:
- the native format ("acc-dag/1") that our client sends, validated here;
- accli task trees: a holder runs nothing and groups its `children`, which
  run in parallel; a node's `callback` runs after the node and everything
  under it succeeded. Identical callback subtrees (same canonical JSON)
  attached to different nodes are one node waiting for all of them: that is
  how a converging step arrives from accli, whose add_callback keeps one.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque

NATIVE_FORMAT = "acc-dag/1"
NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_NODES = 1000
MAX_NAME = 200  # the root job's name column


class DagError(ValueError):
    pass


def is_single_task(tree: dict) -> bool:
    return not tree.get("is_holder_job") and not tree.get("children") and not tree.get("callback")


def _canonical(node: dict) -> str:
    return json.dumps(node, sort_keys=True, separators=(",", ":"))


def _slug(name: str | None) -> str:
    text = re.sub(r"[^a-z0-9_-]+", "-", (name or "task").lower()).strip("-")
    return (text or "task")[:56]


class _TreeBuilder:
    def __init__(self):
        self.nodes: list[dict] = []
        self.edges: set[tuple[str, str]] = set()
        self.ids: set[str] = set()
        self.callbacks: dict[str, tuple[set[str], set[str]]] = {}  # canonical -> (entries, done)

    def new_id(self, name: str | None) -> str:
        base = _slug(name)
        key, n = base, 1
        while key in self.ids:
            n += 1
            key = f"{base}-{n}"
        self.ids.add(key)
        return key

    def build(self, task: dict, after: set[str]) -> tuple[set[str], set[str]]:
        """Add `task`'s subtree to run after `after`; return (its entry nodes, its done set)."""
        if not isinstance(task, dict):
            raise DagError("Every task in the tree must be a JSON object.")
        children = task.get("children") or []
        if not isinstance(children, list):
            raise DagError("children must be a list of tasks.")
        if task.get("is_holder_job"):
            entries, start, done = set(), set(after), set()
        else:
            node_id = self.new_id(task.get("name"))
            node = {k: v for k, v in task.items() if k not in ("children", "callback")}
            self.nodes.append({"id": node_id, **node})
            self.edges |= {(a, node_id) for a in after}
            entries, start, done = {node_id}, {node_id}, {node_id}
        for child in children:
            child_entries, child_done = self.build(child, start)
            done |= child_done
            if task.get("is_holder_job"):
                entries |= child_entries
        callback = task.get("callback")
        if callback:
            cb_entries, cb_done = self.attach_callback(callback, done or start)
            entries = entries or cb_entries
            done = cb_done
        return entries, done

    def attach_callback(self, callback: dict, after: set[str]) -> tuple[set[str], set[str]]:
        key = _canonical(callback)
        if key in self.callbacks:  # the same subtree seen before: it waits for these nodes too
            entries, done = self.callbacks[key]
            self.edges |= {(a, e) for a in after for e in entries}
            return entries, done
        entries, done = self.build(callback, after)
        self.callbacks[key] = (entries, done)
        return entries, done


def tree_to_dag(tree: dict) -> dict:
    """An accli task tree -> native DAG. The root holder's name names the flow."""
    builder = _TreeBuilder()
    builder.build(tree, set())
    if not builder.nodes:
        raise DagError("The tree has no task that runs anything: holders only group tasks.")
    dag = {
        "format": NATIVE_FORMAT,
        "name": tree.get("name") if tree.get("is_holder_job") else None,
        "required_storage_workflow": tree.get("required_storage_workflow"),
        "nodes": builder.nodes,
        "edges": sorted([list(e) for e in builder.edges]),
    }
    return validate_dag(dag)


def validate_dag(dag: dict) -> dict:
    """Check ids, edges and acyclicity; return the DAG with edges de-duplicated."""
    name = dag.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
        raise DagError(f"The jobflow's name must be a string of at most {MAX_NAME} characters.")
    nodes = dag.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise DagError("A jobflow needs a non-empty list of nodes.")
    if len(nodes) > MAX_NODES:
        raise DagError(f"A jobflow may have at most {MAX_NODES} nodes, this one has {len(nodes)}.")
    ids = []
    for node in nodes:
        node_id = node.get("id") if isinstance(node, dict) else None
        if not isinstance(node_id, str) or not NODE_ID.match(node_id):
            raise DagError(f"Node id {node_id!r} is not valid: use 1-64 letters, digits, '_', '.', '-'.")
        ids.append(node_id)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DagError(f"Node ids must be unique; repeated: {', '.join(duplicates)}.")
    known = set(ids)
    edges = set()
    for edge in dag.get("edges") or []:
        if not (isinstance(edge, list | tuple) and len(edge) == 2 and all(isinstance(e, str) for e in edge)):
            raise DagError(f"An edge must be [before, after] node ids, got {edge!r}.")
        before, after = edge
        missing = [e for e in edge if e not in known]
        if missing:
            raise DagError(f"Edge {before} -> {after} names unknown node(s): {', '.join(missing)}.")
        if before == after:
            raise DagError(f"Node {before} cannot run after itself.")
        edges.add((before, after))
    order = topological_order(ids, edges)
    return {**dag, "nodes": nodes, "edges": sorted([list(e) for e in edges]), "order": order}


def topological_order(ids: list[str], edges) -> list[str]:
    parents = defaultdict(set)
    children = defaultdict(set)
    for before, after in edges:
        parents[after].add(before)
        children[before].add(after)
    ready = deque(i for i in ids if not parents[i])
    order = []
    remaining = {i: len(parents[i]) for i in ids}
    while ready:
        node = ready.popleft()
        order.append(node)
        for child in sorted(children[node]):
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    if len(order) != len(ids):
        stuck = sorted(i for i in ids if remaining[i] > 0)
        raise DagError(f"The jobflow has a cycle through: {', '.join(stuck)}.")
    return order


def parents_of(dag: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {n["id"]: [] for n in dag["nodes"]}
    for before, after in dag["edges"]:
        out[after].append(before)
    return out

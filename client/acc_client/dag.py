"""Pure conversion of a WKubeTask tree into the native DAG ("acc-dag/1"); no I/O.

Semantics (the jobflow seed, with several callbacks allowed):
- a holder runs nothing; its children run in parallel after the holder's own
  predecessors;
- a callback runs after its task AND everything under it succeeded: the task,
  its children and, recursively, their children and callbacks;
- one task object is one node, however often it is attached: a callback
  shared by several tasks waits for all of them (converging).

Only direct edges are emitted (a transitive reduction), so the server's
per-node "after" lists read like the script. Node ids come from names, are
unique, and are assigned in run order, so the same script gives the same DAG.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING

from acc_client.task import JOB_KWARGS

if TYPE_CHECKING:
    from acc_client.task import WKubeTask

FORMAT = "acc-dag/1"
MAX_ID = 64


def reachable(root: WKubeTask) -> list[WKubeTask]:
    """Every distinct task under root (root first), depth-first, children before callbacks."""
    seen: set[int] = set()
    order: list[WKubeTask] = []
    stack = [root]
    while stack:
        task = stack.pop()
        if id(task) in seen:
            continue
        seen.add(id(task))
        order.append(task)
        stack.extend(reversed(task.children + task.callbacks))
    return order


def tree_to_dag(root: WKubeTask, code: Mapping[WKubeTask, dict] | None = None) -> dict:
    """The DAG that root describes; `code` adds repo_url/repo_branch of uploaded job folders."""
    tasks = reachable(root)
    index = {id(t): i for i, t in enumerate(tasks)}
    _check_acyclic(tasks, index)
    after = _prerequisites(tasks, index)
    edges = {(p, i) for i, prereqs in after.items() for p in prereqs}
    order = _run_order([i for i, t in enumerate(tasks) if not t.is_holder], edges, tasks)
    edges = _reduce(order, edges)
    ids = _node_ids([tasks[i].name for i in order])
    node_id = dict(zip(order, ids, strict=True))
    nodes = [_node(node_id[i], tasks[i], (code or {}).get(tasks[i])) for i in order]
    if not nodes:
        raise ValueError("nothing to run: the holder has no task under it (add_child / add_callback).")
    position = {i: n for n, i in enumerate(order)}
    storage = [n["required_storage_workflow"] for n in nodes if n["required_storage_workflow"] is not None]
    return {
        "format": FORMAT,
        "name": root.name if root.is_holder else None,
        "required_storage_workflow": max(storage) if storage else None,
        "nodes": nodes,
        "edges": [[node_id[a], node_id[b]] for a, b in sorted(edges, key=lambda e: (position[e[0]], position[e[1]]))],
    }


def _check_acyclic(tasks: list[WKubeTask], index: dict[int, int]) -> None:
    """add_child/add_callback must not loop back, else "everything under a task" is infinite."""
    state = [0] * len(tasks)  # 0 new, 1 on the current path, 2 done
    for start in range(len(tasks)):
        if state[start]:
            continue
        path = [(start, iter(_links(tasks[start], index)))]
        state[start] = 1
        while path:
            node, links = path[-1]
            nxt = next(links, None)
            if nxt is None:
                state[node] = 2
                path.pop()
            elif state[nxt] == 1:
                loop = [tasks[i] for i, _ in path[[i for i, _ in path].index(nxt) :]] + [tasks[nxt]]
                raise ValueError("add_child/add_callback form a loop: " + " -> ".join(map(repr, loop)))
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append((nxt, iter(_links(tasks[nxt], index))))


def _links(task: WKubeTask, index: dict[int, int]) -> list[int]:
    return [index[id(t)] for t in task.children + task.callbacks]


def _prerequisites(tasks: list[WKubeTask], index: dict[int, int]) -> dict[int, set[int]]:
    """For each real node, the nodes that must have succeeded before it starts."""
    n = len(tasks)
    topo = _structure_order(tasks, index)
    own = [set() if t.is_holder else {i} for i, t in enumerate(tasks)]
    under: list[set[int]] = [set() for _ in range(n)]  # the task and its children's subtrees
    done: list[set[int]] = [set() for _ in range(n)]  # under + callbacks' subtrees
    for i in reversed(topo):
        under[i] = own[i].union(*(done[index[id(c)]] for c in tasks[i].children))
        done[i] = under[i].union(*(done[index[id(c)]] for c in tasks[i].callbacks))
    start: list[set[int]] = [set() for _ in range(n)]
    for i in topo:  # attachers come first, so their start sets are final
        for child in tasks[i].children:
            start[index[id(child)]] |= start[i]
        for callback in tasks[i].callbacks:
            # every node under i already waits for start[i]; only an empty holder passes it on
            start[index[id(callback)]] |= under[i] or start[i]
    for i, task in enumerate(tasks):
        if not task.is_holder and i in start[i]:
            raise ValueError(f"{task!r} would have to run after itself: it is both under a task and its callback.")
    return {i: start[i] for i, t in enumerate(tasks) if not t.is_holder}


def _structure_order(tasks: list[WKubeTask], index: dict[int, int]) -> list[int]:
    """Tasks ordered so that each comes after every task that attached it (children/callbacks)."""
    incoming = [0] * len(tasks)
    for task in tasks:
        for j in _links(task, index):
            incoming[j] += 1
    ready = [i for i, k in enumerate(incoming) if k == 0]
    order = []
    while ready:
        i = ready.pop()
        order.append(i)
        for j in _links(tasks[i], index):
            incoming[j] -= 1
            if incoming[j] == 0:
                ready.append(j)
    return order


def _run_order(nodes: list[int], edges: set[tuple[int, int]], tasks: list[WKubeTask]) -> list[int]:
    """Topological order of the nodes, ties broken by position in the script's tree."""
    parents = {i: 0 for i in nodes}
    children: dict[int, list[int]] = {i: [] for i in nodes}
    for a, b in edges:
        parents[b] += 1
        children[a].append(b)
    ready = [i for i in nodes if parents[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in children[i]:
            parents[j] -= 1
            if parents[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        stuck = ", ".join(repr(tasks[i]) for i in nodes if parents[i] > 0)
        raise ValueError(f"the tasks wait for each other in a cycle: {stuck}")
    return order


def _reduce(order: list[int], edges: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Keep a->b only when no other parent of b already runs after a (a transitive reduction).

    Parents are tried latest first: a later parent's ancestors cover every
    earlier parent it depends on. Near-linear in the kept edges, so long
    chains, whose unreduced prerequisites are quadratic, stay fast.
    """
    position = {i: n for n, i in enumerate(order)}
    parents: dict[int, list[int]] = {i: [] for i in order}
    for a, b in edges:
        parents[b].append(a)
    above: dict[int, set[int]] = {}
    kept = set()
    for b in order:
        covered: set[int] = set()
        for p in sorted(parents[b], key=position.__getitem__, reverse=True):
            if p not in covered:
                kept.add((p, b))
                covered |= above[p]
        above[b] = covered.union(parents[b])
    return kept


def slug(name: str | None) -> str:
    """A node id from a task name: lower-case ASCII, [a-z0-9_-], starting with a letter or digit."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9_-]+", "-", text)
    text = re.sub(r"^[^a-z0-9]+", "", text)[:MAX_ID].rstrip("-")
    return text or "task"


def _node_ids(names: list[str | None]) -> list[str]:
    taken: set[str] = set()
    out = []
    for name in names:
        base = slug(name)
        key, n = base, 1
        while key in taken:
            n += 1
            suffix = f"-{n}"
            key = base[: MAX_ID - len(suffix)].rstrip("-") + suffix
        taken.add(key)
        out.append(key)
    return out


def _node(node_id: str, task: WKubeTask, code: dict | None) -> dict:
    merged = {**task.kwargs, **(code or {})}
    return {
        "id": node_id,
        "name": task.name,
        "job_kwargs": {k: merged[k] for k in JOB_KWARGS if k in merged},
        **task.resources,
        "job_secrets": dict(task.job_secrets),
        "retries": task.retries,
        "retry_backoff": task.retry_backoff,
        **task.spec_extras,
    }

"""tree_to_dag: the seed's jobflow semantics, as plain asserts on the native DAG."""

from __future__ import annotations

import pytest
from acc_client import WKubeTask, tree_to_dag
from acc_client.dag import slug


def t(name: str | None = None, **kw) -> WKubeTask:
    return WKubeTask(name=name, docker_image="python:3.11", command="true", **kw)


def edges(dag: dict) -> set[tuple[str, str]]:
    return {tuple(e) for e in dag["edges"]}


def ids(dag: dict) -> list[str]:
    return [n["id"] for n in dag["nodes"]]


def ancestors(dag: dict, node: str) -> set[str]:
    parents: dict[str, set[str]] = {}
    for a, b in dag["edges"]:
        parents.setdefault(b, set()).add(a)
    out, todo = set(), [node]
    while todo:
        for p in parents.get(todo.pop(), ()):
            if p not in out:
                out.add(p)
                todo.append(p)
    return out


def test_linear():
    flow, a, b, c = WKubeTask(name="lin"), t("A"), t("B"), t("C")
    flow.add_child(a)
    a.add_callback(b)
    b.add_callback(c)
    dag = tree_to_dag(flow)
    assert dag["format"] == "acc-dag/1" and dag["name"] == "lin"
    assert ids(dag) == ["a", "b", "c"]
    assert dag["edges"] == [["a", "b"], ["b", "c"]]


def test_diverging_callbacks_fan_out():
    a, b, c = t("A"), t("B"), t("C")
    a.add_callback(b)
    a.add_callback(c)
    dag = tree_to_dag(a)
    assert dag["name"] is None  # the root runs something: no holder names the flow
    assert edges(dag) == {("a", "b"), ("a", "c")}


def test_converging_callback_is_one_node_waiting_for_all():
    a, b, c, d = t("A"), t("B"), t("C"), t("D")
    a.add_callback(b)
    a.add_callback(c)
    b.add_callback(d)
    c.add_callback(d)
    dag = tree_to_dag(a)
    assert ids(dag) == ["a", "b", "c", "d"]
    assert edges(dag) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}


def test_seed_example():
    flow = WKubeTask()
    prep, model_a, model_b = t("Prepare Data"), t("Model A"), t("Model B")
    combine, finisher = t("Combine Results"), t("Finisher")
    flow.add_child(prep)
    prep.add_callback(model_a)
    prep.add_callback(model_b)
    model_a.add_callback(combine)
    model_b.add_callback(combine)
    flow.add_callback(finisher)
    dag = tree_to_dag(flow)
    assert ids(dag) == ["prepare-data", "model-a", "model-b", "combine-results", "finisher"]
    assert dag["edges"] == [
        ["prepare-data", "model-a"],
        ["prepare-data", "model-b"],
        ["model-a", "combine-results"],
        ["model-b", "combine-results"],
        ["combine-results", "finisher"],
    ]
    assert ancestors(dag, "prepare-data") == set()
    assert ancestors(dag, "model-a") == ancestors(dag, "model-b") == {"prepare-data"}
    assert ancestors(dag, "combine-results") == {"prepare-data", "model-a", "model-b"}
    assert ancestors(dag, "finisher") == {"prepare-data", "model-a", "model-b", "combine-results"}


def test_children_run_in_parallel_after_the_holders_predecessors():
    first, holder, x, y = t("first"), WKubeTask(name="group"), t("x"), t("y")
    first.add_callback(holder)
    holder.add_child(x)
    holder.add_child(y)
    dag = tree_to_dag(first)
    assert edges(dag) == {("first", "x"), ("first", "y")}


def test_holder_inside_holder():
    outer, inner = WKubeTask(name="outer"), WKubeTask(name="inner")
    a, b, c, d, e = t("a"), t("b"), t("c"), t("d"), t("e")
    outer.add_child(inner)
    inner.add_child(a)
    inner.add_child(b)
    inner.add_callback(c)
    outer.add_child(d)
    outer.add_callback(e)
    dag = tree_to_dag(outer)
    assert dag["name"] == "outer" and ids(dag) == ["a", "b", "c", "d", "e"]
    assert ancestors(dag, "c") == {"a", "b"}
    assert ancestors(dag, "d") == set()
    assert ancestors(dag, "e") == {"a", "b", "c", "d"}
    assert edges(dag) == {("a", "c"), ("b", "c"), ("c", "e"), ("d", "e")}


def test_callback_of_a_holder_without_children_follows_the_holders_predecessors():
    a, holder, z = t("a"), WKubeTask(), t("z")
    a.add_callback(holder)
    holder.add_callback(z)
    assert edges(tree_to_dag(a)) == {("a", "z")}


def test_same_task_reachable_twice_is_one_node():
    root, g1, g2, shared, p, q = WKubeTask(), WKubeTask(), WKubeTask(), t("shared"), t("p"), t("q")
    root.add_child(g1)
    root.add_child(g2)
    g1.add_child(shared)
    g2.add_child(shared)
    g1.add_callback(p)
    g2.add_callback(q)
    dag = tree_to_dag(root)
    assert ids(dag) == ["shared", "p", "q"]
    assert edges(dag) == {("shared", "p"), ("shared", "q")}


def test_deep_chain_needs_no_recursion():
    root = WKubeTask()
    tasks = [t(f"step {i}") for i in range(1500)]
    root.add_child(tasks[0])
    for before, after in zip(tasks, tasks[1:], strict=False):
        before.add_callback(after)
    dag = tree_to_dag(root)
    assert len(dag["nodes"]) == 1500 and len(dag["edges"]) == 1499
    assert dag["edges"][0] == ["step-0", "step-1"] and dag["edges"][-1] == ["step-1498", "step-1499"]


def test_deep_nested_holders():
    root = holder = WKubeTask(name="top")
    for _ in range(50):
        inner = WKubeTask()
        holder.add_child(inner)
        holder = inner
    leaf, last = t("leaf"), t("last")
    holder.add_child(leaf)
    root.add_callback(last)
    assert tree_to_dag(root)["edges"] == [["leaf", "last"]]


def test_node_ids_are_unique_deterministic_and_valid():
    flow = WKubeTask()
    names = ["Model", "model", None, None, "Modèle 3!", "_x", "-" * 5, "a" * 80, "a" * 80]
    for name in names:
        flow.add_child(t(name))
    first = ids(tree_to_dag(flow))
    assert first == ["model", "model-2", "task", "task-2", "modele-3", "x", "task-3", "a" * 64, "a" * 62 + "-2"]
    assert ids(tree_to_dag(flow)) == first
    assert slug("Prepare Data") == "prepare-data"


def test_node_carries_only_what_the_user_set():
    task = WKubeTask(
        name="Fit",
        docker_image="python:3.11",
        command="python fit.py",
        conf={"input_mappings": "acc://demo/in/:/code/input/"},
        force_build=False,
        required_cores=2,
        required_ram=512 * 1024**2,
        timeout=3600.0,
        job_secrets={"TOKEN": "s3cr3t"},
        retries=2,
        retry_backoff=5,
    )
    (node,) = tree_to_dag(task)["nodes"]
    assert node == {
        "id": "fit",
        "name": "Fit",
        "job_kwargs": {
            "docker_image": "python:3.11",
            "force_build": False,
            "command": "python fit.py",
            "conf": {"input_mappings": "acc://demo/in/:/code/input/"},
        },
        "required_cores": 2.0,
        "required_ram": 536870912,
        "required_storage_local": None,
        "required_storage_workflow": None,
        "timeout": 3600,
        "job_secrets": {"TOKEN": "s3cr3t"},
        "retries": 2,
        "retry_backoff": 5.0,
    }


def test_uploaded_code_is_merged_and_storage_is_the_maximum():
    flow, a, b = WKubeTask(), t("a", required_storage_workflow=10), t("b", required_storage_workflow=30)
    flow.add_child(a)
    flow.add_child(b)
    code = {a: {"repo_url": "s3accjobstore://manifest_ab.json", "repo_branch": "ab"}}
    dag = tree_to_dag(flow, code)
    assert dag["required_storage_workflow"] == 30
    assert list(dag["nodes"][0]["job_kwargs"]) == ["docker_image", "repo_url", "repo_branch", "command"]
    assert dag["nodes"][1]["job_kwargs"] == {"docker_image": "python:3.11", "command": "true"}
    assert tree_to_dag(t("solo"))["required_storage_workflow"] is None


def test_no_duplicate_edges_when_linked_twice():
    a, b = t("a"), t("b")
    a.add_callback(b)
    a.add_callback(b)
    assert tree_to_dag(a)["edges"] == [["a", "b"]]


def test_loops_are_refused():
    a, b = t("a"), t("b")
    a.add_callback(b)
    b.add_callback(a)
    with pytest.raises(ValueError, match="loop"):
        tree_to_dag(a)


def test_a_task_both_under_and_after_a_holder_is_refused():
    flow, a = WKubeTask(), t("a")
    flow.add_child(a)
    flow.add_callback(a)
    with pytest.raises(ValueError, match="after itself"):
        tree_to_dag(flow)


def test_a_cycle_through_callbacks_is_refused():
    holder, a, b = WKubeTask(), t("a"), t("b")
    holder.add_child(a)
    holder.add_callback(b)
    b.add_callback(a)
    with pytest.raises(ValueError, match="after itself|cycle"):
        tree_to_dag(holder)


def test_a_holder_with_nothing_under_it_is_refused():
    with pytest.raises(ValueError, match="nothing to run"):
        tree_to_dag(WKubeTask(name="empty"))


def test_add_child_only_on_holders():
    a, b = t("a"), t("b")
    with pytest.raises(ValueError, match="only on a holder"):
        a.add_child(b)
    with pytest.raises(ValueError, match="WKubeTask"):
        WKubeTask().add_child("b")
    with pytest.raises(ValueError, match="itself"):
        a.add_callback(a)

"""Tree -> DAG conversion and validation (pure functions, plain asserts)."""

import pytest

from jobflows.dag import DagError, tree_to_dag, validate_dag


def task(name, **extra):
    return {
        "is_holder_job": False,
        "name": name,
        "job_kwargs": {"command": "true", "docker_image": "x"},
        "children": [],
        "callback": None,
        **extra,
    }


def holder(name=None, children=(), callback=None):
    return {"is_holder_job": True, "name": name, "job_kwargs": {}, "children": list(children), "callback": callback}


def after_sets(dag):
    out = {n["id"]: set() for n in dag["nodes"]}
    for before, after in dag["edges"]:
        out[after].add(before)
    return out


def test_holder_children_run_in_parallel_and_callback_after_everything():
    tree = holder("flow", [task("a", callback=task("a2")), task("b")], callback=task("fin"))
    dag = tree_to_dag(tree)
    assert after_sets(dag) == {"a": set(), "b": set(), "a2": {"a"}, "fin": {"a2", "b"}}
    assert dag["name"] == "flow"
    assert dag["order"].index("fin") == 3


def test_identical_callbacks_from_accli_converge_into_one_node():
    combine = task("combine")
    tree = holder("flow", [task("model_a", callback=combine), task("model_b", callback=dict(combine))])
    dag = tree_to_dag(tree)
    assert [n["id"] for n in dag["nodes"]].count("combine") == 1
    assert after_sets(dag)["combine"] == {"model_a", "model_b"}


def test_deep_chain_and_nested_holders():
    tree = holder("root", [holder("inner", [task("x", callback=task("y", callback=task("z")))])], callback=task("end"))
    assert after_sets(tree_to_dag(tree)) == {"x": set(), "y": {"x"}, "z": {"y"}, "end": {"z"}}


def test_same_names_get_distinct_ids():
    dag = tree_to_dag(holder("f", [task("step"), task("step")]))
    assert sorted(n["id"] for n in dag["nodes"]) == ["step", "step-2"]


def test_a_tree_of_holders_only_is_refused():
    with pytest.raises(DagError, match="no task that runs"):
        tree_to_dag(holder("empty", [holder("also empty")]))


@pytest.mark.parametrize(
    "dag,needle",
    [
        ({"nodes": []}, "non-empty"),
        ({"nodes": [{"id": "a"}, {"id": "a"}]}, "repeated: a"),
        ({"nodes": [{"id": "a"}], "edges": [["a", "b"]]}, "unknown node"),
        ({"nodes": [{"id": "a"}, {"id": "b"}], "edges": [["a", "b"], ["b", "a"]]}, "cycle"),
        ({"nodes": [{"id": "bad id!"}]}, "not valid"),
    ],
)
def test_invalid_native_dags_are_refused(dag, needle):
    with pytest.raises(DagError, match=needle):
        validate_dag(dag)

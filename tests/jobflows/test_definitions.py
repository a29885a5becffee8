"""Saved jobflow definitions: checks tied to a node, acc-dag/1 and wkube.py round trips (pure, plain asserts)."""

import pytest
from acc_client import WKubeTask
from acc_client.dag import tree_to_dag as client_tree_to_dag

from jobflows import definitions as d
from jobflows import wkube
from jobflows.dag import validate_dag

SCHEMA = {"type": "object", "properties": {"N": {"type": "integer", "minimum": 1, "default": 2}}, "required": ["N"]}
SPECS = {
    (1, 1): {
        "name": "echo",
        "spec": {
            "stack": {"kind": "docker_image", "image": "acc-test/busybox:latest"},
            "code": {"kind": "none"},
            "command": "echo hi",
            "build_timeout": None,
            "conf": {"GREETING": "hi"},
            "resources": {"required_cores": 0.5, "timeout": 120},
        },
    },
    (2, 3): {
        "name": "count",
        "spec": {
            "stack": {"kind": "docker_image", "image": "acc-test/busybox:latest"},
            "code": {"kind": "none"},
            "command": "echo $N",
            "build_timeout": None,
            "conf": {},
            "resources": {"timeout": 60},
            "conf_schema": SCHEMA,
            "deterministic": False,
        },
    },
}
CANDIDATES = [{"routine": r, "version": v, **s} for (r, v), s in SPECS.items()]


def diamond(**b_extra):
    return {
        "format": d.FORMAT,
        "nodes": [
            {
                "id": "a",
                "routine": 1,
                "version": 1,
                "outputs": ["/code/out/:acc://demo/a/"],
                "pipe_writes": ["/mnt/pipe/a.txt"],
            },
            {"id": "b", "routine": 2, "version": 3, "conf": {"N": "5"}, **b_extra},
            {"id": "c", "routine": 1, "version": 1, "inputs": ["acc://demo/a/x.txt:/code/x.txt"]},
            {"id": "d", "routine": 1, "version": 1, "pipe_inputs": {"A_FILE": "/mnt/pipe/a.txt"}},
        ],
        "edges": [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]],
    }


def check(definition, **kw):
    return d.normalize(definition, specs=SPECS, file_exists=kw.get("file_exists", lambda url: False))


def test_diamond_becomes_an_acc_dag_the_server_accepts():
    body = d.to_acc_dag(check(diamond()), specs=SPECS, name="diamond")
    dag = validate_dag(body)
    assert dag["order"][0] == "a" and dag["order"][-1] == "d"
    assert {tuple(e) for e in dag["edges"]} == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}
    nodes = {n["id"]: n for n in body["nodes"]}
    assert nodes["b"]["job_kwargs"]["conf"] == {"N": "5"}
    assert nodes["b"]["conf_schema"] == SCHEMA and nodes["b"]["deterministic"] is False
    assert nodes["a"]["job_kwargs"]["conf"]["output_mappings"] == "/code/out/:acc://demo/a/"
    assert nodes["d"]["job_kwargs"]["conf"] == {"GREETING": "hi", "A_FILE": "/mnt/pipe/a.txt"}
    assert nodes["a"]["required_cores"] == 0.5 and nodes["a"]["timeout"] == 120


def test_round_trip_definition_acc_dag_definition():
    saved = check(diamond())
    body = d.to_acc_dag(saved, specs=SPECS, name="diamond")
    assert check(d.from_acc_dag(body, candidates=CANDIDATES)) == saved


def test_wkube_export_is_what_the_client_dispatches_and_imports_back():
    saved = check(diamond())
    body = d.to_acc_dag(saved, specs=SPECS, name="diamond")
    source = wkube.to_wkube(body, project="demo", title="diamond")
    namespace = {}
    exec(compile(source, "wkube.py", "exec"), namespace)  # the real client, as `acc dispatch` runs it
    sent = client_tree_to_dag(namespace["flow"])
    assert [n["id"] for n in sent["nodes"]] == [n["id"] for n in body["nodes"]]
    assert {tuple(e) for e in sent["edges"]} == {tuple(e) for e in body["edges"]}
    for ours, theirs in zip(body["nodes"], sent["nodes"], strict=True):
        assert theirs["job_kwargs"] == ours["job_kwargs"]
        for key in ("conf_schema", "deterministic", "timeout", "required_cores"):
            assert theirs.get(key) == ours.get(key), key
    parsed = wkube.parse_wkube(source)
    back = check(d.from_acc_dag(parsed, candidates=CANDIDATES))
    without_pipe_notes = {
        **saved,
        "nodes": [{k: v for k, v in n.items() if k != "pipe_writes"} for n in saved["nodes"]],
    }
    d_node = next(n for n in back["nodes"] if n["id"] == "d")
    assert d_node["conf"] == {"A_FILE": "/mnt/pipe/a.txt"}  # the pipe input comes back as a plain conf override
    assert [n for n in back["nodes"] if n["id"] != "d"] == [n for n in without_pipe_notes["nodes"] if n["id"] != "d"]
    assert back["edges"] == saved["edges"]


def test_redundant_edge_is_dropped_as_the_client_drops_it():
    definition = diamond()
    definition["edges"].append(["a", "d"])
    body = d.to_acc_dag(check(definition), specs=SPECS, name="x")
    assert ["a", "d"] not in body["edges"]


@pytest.mark.parametrize(
    ("change", "node", "needle"),
    [
        (lambda f: f["edges"].append(["d", "a"]), "a", "cycle"),
        (lambda f: f["edges"].append(["a", "zz"]), "a", "not a node"),
        (lambda f: f["nodes"][1].update(conf={"N": "zero"}), "b", "refused by the routine's schema"),
        (lambda f: f["nodes"][1].update(conf={"N": "0"}), "b", "minimum"),
        (lambda f: f["nodes"][2].update(inputs=["acc://demo/nobody/x.txt:/code/x.txt"]), "c", "neither a project file"),
        (lambda f: f["nodes"][3].update(pipe_inputs={"A": "/mnt/pipe/none.txt"}), "d", "no upstream node"),
        (lambda f: f["nodes"][0].update(routine=99), "a", "not found"),
        (lambda f: f["nodes"][2].update(id="b"), "b", "used by two nodes"),
        (lambda f: f["nodes"][0].update(outputs=["relative:acc://demo/a"]), "a", "absolute"),
    ],
)
def test_bad_settings_are_refused_at_their_node(change, node, needle):
    definition = diamond()
    change(definition)
    with pytest.raises(d.DefinitionError) as caught:
        check(definition)
    assert caught.value.node == node
    assert needle in str(caught.value)


def test_an_input_that_exists_in_the_project_is_accepted():
    definition = diamond()
    definition["nodes"][0].pop("outputs")
    with pytest.raises(d.DefinitionError):
        check(definition)
    assert check(definition, file_exists=lambda url: url == "acc://demo/a/x.txt")


HOSTILE = [
    ("import os\nos.system('touch /tmp/pwned')\n", 1, "Import"),
    ("from acc_client import WKubeTask\nflow = WKubeTask(name=__import__('os').system('id'))\n", 2, "literal"),
    ("from acc_client import WKubeTask\nflow = WKubeTask()\nflow.add_child(print('x'))\n", 3, "add_child"),
    ("from acc_client import WKubeTask\nimport subprocess\n", 2, "Import"),
    ("from acc_client import WKubeTask\nflow = eval('1')\n", 2, "only WKubeTask"),
    ("from acc_client import WKubeTask\nflow = WKubeTask(**{'name': 'x'})\n", 2, "keyword"),
    ("from acc_client import WKubeTask\nflow = WKubeTask()\nflow.name = 'x'\n", 3, "plain variable"),
    ("from acc_client import WKubeTask\ndef f():\n    pass\n", 2, "FunctionDef"),
    ("from os import system as WKubeTask\n", 1, "Import"),
]


@pytest.mark.parametrize(("source", "line", "needle"), HOSTILE)
def test_hostile_wkube_is_refused_without_running_it(source, line, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(d.DefinitionError) as caught:
        wkube.parse_wkube(source.replace("/tmp/pwned", str(tmp_path / "pwned")))
    assert caught.value.line == line, str(caught.value)
    assert f"line {line}" in str(caught.value) and needle in str(caught.value)
    assert not (tmp_path / "pwned").exists()


def test_client_records_conf_schema_and_deterministic():
    task = WKubeTask(name="x", docker_image="img", command="true", conf_schema=SCHEMA, deterministic=False)
    node = client_tree_to_dag(task)["nodes"][0]
    assert node["conf_schema"] == SCHEMA and node["deterministic"] is False
    with pytest.raises(ValueError, match="deterministic"):
        WKubeTask(name="x", docker_image="img", command="true", deterministic="no")


def test_an_upstream_output_counts_however_the_project_is_spelled():
    definition = diamond()
    definition["nodes"][2]["inputs"] = ["acc://a/x.txt:/code/x.txt"]  # acc://<path> is the same project's file

    def locate(url):
        rest = url.removeprefix("acc://")
        if rest.startswith("elsewhere/"):
            raise ValueError(f"{url} is outside project demo.")
        return rest.removeprefix("demo/")

    assert d.normalize(definition, specs=SPECS, file_exists=lambda url: False, locate=locate)
    definition["nodes"][0]["outputs"] = ["/code/out/:acc://elsewhere/a/"]
    with pytest.raises(d.DefinitionError, match="outside project demo") as caught:
        d.normalize(definition, specs=SPECS, file_exists=lambda url: False, locate=locate)
    assert caught.value.node == "a"


@pytest.mark.parametrize(
    "source",
    [
        "from acc_client import WKubeTask\nflow = WKubeTask(name=" + "1+" * 200_000 + "1)\n",  # the parser recurses
        "from acc_client import WKubeTask\nflow = WKubeTask(name=" + "-" * 200_000 + "1)\n",  # literal_eval recurses
        "from acc_client import WKubeTask\nflow = WKubeTask(name='a'\x00)\n",
    ],
)
def test_an_absurd_wkube_gets_a_clear_refusal_not_a_crash(source):
    with pytest.raises(d.DefinitionError):
        wkube.parse_wkube(source)


def test_a_saved_jobflow_never_stores_a_secret():
    secret_schema = {
        "type": "object",
        "properties": {"TOKEN": {"type": "string", "format": "password"}, "N": {"type": "integer"}},
        "required": ["TOKEN"],
    }
    specs = {**SPECS, (2, 3): {**SPECS[(2, 3)], "spec": {**SPECS[(2, 3)]["spec"], "conf_schema": secret_schema}}}
    with pytest.raises(d.DefinitionError, match="TOKEN is a secret") as caught:
        d.normalize(diamond(conf={"N": "5", "TOKEN": "hunter22"}), specs=specs, file_exists=lambda url: False)
    assert "hunter22" not in str(caught.value)
    d.normalize(diamond(conf={"N": "5"}), specs=specs, file_exists=lambda url: False)  # a required secret is no refusal

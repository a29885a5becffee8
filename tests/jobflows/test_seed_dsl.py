"""The jobflow seed's example, written with our WKubeTask DSL, dispatched by the real `acc` CLI on Docker.

The wkube.py below is the seed's example unchanged except for the import
line and what the seed leaves to the user (the `...`: resources, and an
output mapping on combine). prep writes a file to /mnt/pipe that both models
read; each model writes its own file there, which combine reads and stores.
"""

import re
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from jobs.models import Job
from routines.models import BaseStack
from tests.conftest import wait_for_status
from tests.kube_fixtures import IMAGE_BACKENDS

pytestmark = pytest.mark.docker

ACC = str(Path(sys.executable).parent / "acc")

WKUBE = """
from acc_client import WKubeTask

RESOURCES = dict(required_cores=1, required_ram=256 * 1024 * 1024, required_storage_local=1024**3,
                 required_storage_workflow=1024**3, timeout=120)

# Holder/root task (doesn't execute anything)
flow = WKubeTask()

# Define individual routines
prep = WKubeTask(
    name="Prepare Data",
    job_folder="./prep",
    base_stack="PYTHON3_7",
    command="python prepare.py",
    **RESOURCES,
)
model_a = WKubeTask(
    name="Model A",
    job_folder="./model_a",
    base_stack="PYTHON3_7",
    command="python model_a.py",
    **RESOURCES,
)
model_b = WKubeTask(
    name="Model B",
    job_folder="./model_b",
    base_stack="PYTHON3_7",
    command="python model_b.py",
    **RESOURCES,
)
combine = WKubeTask(
    name="Combine Results",
    job_folder="./combine",
    base_stack="PYTHON3_7",
    command="python combine.py",
    conf={"output_mappings": "/code/out/:acc://demo/seed/"},
    **RESOURCES,
)
finisher = WKubeTask(
    name="Finisher",
    job_folder="./finisher",
    base_stack="PYTHON3_7",
    command="python finalize.py",
    **RESOURCES,
)

# Define DAG relationships
flow.add_child(prep) # Root → prep
prep.add_callback(model_a) # prep → model_a
prep.add_callback(model_b) # prep → model_b
model_a.add_callback(combine) # model_a → combine
model_b.add_callback(combine) # model_b → combine
flow.add_callback(finisher) # Final step after all children complete
"""

MODEL = """
import pathlib, time
numbers = [int(x) for x in pathlib.Path("/mnt/pipe/prep/numbers.txt").read_text().split()]
print("{name} read", numbers, flush=True)
time.sleep(2)
pathlib.Path("/mnt/pipe/{name}.txt").write_text("{name}: {op}=%d\\n" % ({expr}))
print("{name} done", flush=True)
"""
SCRIPTS = {
    "prep/prepare.py": """
        import pathlib
        pathlib.Path("/mnt/pipe/prep").mkdir(exist_ok=True)
        pathlib.Path("/mnt/pipe/prep/numbers.txt").write_text("1 2 3 4\\n")
        print("prep wrote /mnt/pipe/prep/numbers.txt", flush=True)
    """,
    "model_a/model_a.py": MODEL.format(name="model_a", op="sum", expr="sum(numbers)"),
    "model_b/model_b.py": MODEL.format(
        name="model_b", op="product", expr="numbers[0] * numbers[1] * numbers[2] * numbers[3]"
    ),
    "combine/combine.py": """
        import pathlib
        text = "".join(pathlib.Path(f"/mnt/pipe/{m}.txt").read_text() for m in ("model_a", "model_b"))
        print("combine read:", text, sep="\\n", end="", flush=True)
        pathlib.Path("out").mkdir(exist_ok=True)
        pathlib.Path("out/combined.txt").write_text(text)
    """,
    "finisher/finalize.py": """
        import os
        print("finisher sees", sorted(os.listdir("/mnt/pipe")), flush=True)
    """,
}
COMBINED = "model_a: sum=10\nmodel_b: product=24\n"


def write_project(folder: Path) -> Path:
    (folder / "wkube.py").parent.mkdir(parents=True, exist_ok=True)
    (folder / "wkube.py").write_text(WKUBE)
    for rel, text in SCRIPTS.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(textwrap.dedent(text))
    return folder


def acc(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed `acc` console script, logged in through accli's stored login in `home`."""
    done = subprocess.run(
        [ACC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, f"acc {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.mark.parametrize("backend", IMAGE_BACKENDS)
def test_the_seed_example_runs_in_order_in_parallel_and_shares_mnt_pipe(
    backend, accli_home, tmp_path, start_worker, api, alice, docker_client
):
    BaseStack.objects.create(name="PYTHON3_7", image="acc-test/python:latest", workdir="/code", install_command="")
    start_worker(backend, concurrency=4)
    folder = write_project(tmp_path / "seed")

    dispatched = acc(accli_home, "dispatch", "demo", "flow", "-f", "wkube.py", cwd=folder)
    root_id = int(re.fullmatch(r"Dispatched root job #ID: (\d+)\n", dispatched.stdout).group(1))
    assert dispatched.stderr.count("Job folder ") == 5, "each job folder is uploaded"
    root = wait_for_status(root_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=180)

    body = api(alice).get(f"/api/v1/jobs/{root_id}/").json()
    nodes = {n["node"]: n for n in body["nodes"]}
    assert root.status == "SUCCEEDED", [
        (j.node_key, j.status, j.message) for j in Job.objects.filter(flow_run__root_id=root_id)
    ]
    assert list(nodes) == ["prepare-data", "model-a", "model-b", "combine-results", "finisher"]
    assert all(n["status"] == "SUCCEEDED" and n["started_at"] and n["finished_at"] for n in nodes.values())
    assert set(nodes["combine-results"]["after"]) == {"model-a", "model-b"}
    start = {k: ts(n["started_at"]) for k, n in nodes.items()}
    end = {k: ts(n["finished_at"]) for k, n in nodes.items()}
    assert end["prepare-data"] <= min(start["model-a"], start["model-b"]), "prep runs before both models"
    assert start["model-a"] < end["model-b"] and start["model-b"] < end["model-a"], "the models run in parallel"
    assert start["combine-results"] >= max(end["model-a"], end["model-b"]), "combine waits for both models"
    assert start["finisher"] >= max(v for k, v in end.items() if k != "finisher"), "the finisher runs after everything"

    status = acc(accli_home, "status", str(root_id)).stdout.splitlines()
    assert re.fullmatch(rf"Job #{root_id} .* \(jobflow, project demo\): SUCCEEDED", status[0]), status
    assert status[1].split() == ["NODE", "JOB", "NAME", "STATUS", "STARTED", "FINISHED", "REUSED_FROM"]
    rows = {line.split()[0]: line for line in status[2:] if line.strip()}
    assert list(rows) == list(nodes)
    for key, node in nodes.items():
        assert rows[key].split()[1] == str(node["id"]) and " SUCCEEDED " in rows[key]

    combine_id = nodes["combine-results"]["id"]
    combine_log = acc(accli_home, "logs", str(combine_id)).stdout
    assert "combine read:\n" + COMBINED in combine_log, combine_log
    model_log = acc(accli_home, "logs", str(nodes["model-b"]["id"])).stdout
    assert "model_b read [1, 2, 3, 4]" in model_log and "model_b done" in model_log, model_log
    finisher_log = acc(accli_home, "logs", str(nodes["finisher"]["id"])).stdout
    assert "finisher sees ['model_a.txt', 'model_b.txt', 'prep']" in finisher_log, finisher_log
    root_logs = acc(accli_home, "logs", str(root_id))
    assert root_logs.stdout == "" and f"{combine_id} (combine-results)" in root_logs.stderr

    out = tmp_path / "downloaded"
    printed = acc(accli_home, "outputs", str(root_id), "-o", str(out)).stdout.splitlines()
    assert printed == [f"seed/combined.txt  {len(COMBINED)} bytes", f"Downloaded 1 files to {out}"]
    assert (out / "seed" / "combined.txt").read_text() == COMBINED

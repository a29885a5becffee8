"""The real accli 2.0.14 dispatches a holder tree with children and a callback."""

import subprocess
from datetime import datetime

import pytest

from tests.conftest import ACCLI, wait_for_status
from tests.test_accli_e2e import write_folder

pytestmark = pytest.mark.django_db(transaction=True)


def test_accli_holder_tree_runs_children_in_parallel_then_the_callback(
    accli_home,
    tmp_path,
    start_worker,
    api,
    alice,
):
    start_worker("local", concurrency=4)
    res = "required_cores=0.5, required_ram=128 * 1024 * 1024, timeout=120"
    folder = write_folder(
        tmp_path / "flow",
        f"""
        from accli import WKubeTask
        flow = WKubeTask(name="accli flow")
        left = WKubeTask(name="left", docker_image="acc-test/busybox:latest",
                         command='sleep 1; echo left > "$ACC_PIPE_DIR/left.txt"', {res})
        right = WKubeTask(name="right", docker_image="acc-test/busybox:latest",
                          command='sleep 1; echo right > "$ACC_PIPE_DIR/right.txt"', {res})
        join = WKubeTask(name="join", docker_image="acc-test/busybox:latest",
                         command='cat "$ACC_PIPE_DIR/left.txt" "$ACC_PIPE_DIR/right.txt"', {res})
        flow.add_child(left)
        flow.add_child(right)
        flow.add_callback(join)
    """,
        {},
    )
    result = subprocess.run(
        [ACCLI, "dispatch", "demo", "flow", "-f", "wkube.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={"HOME": str(accli_home), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    root_id = int(result.stdout.rsplit("Dispatched root job #ID:", 1)[1].split()[0])
    root = wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=90)
    body = api(alice).get(f"/api/v1/jobs/{root_id}/").json()
    assert root.status == "SUCCEEDED", body
    nodes = {n["node"]: n for n in body["nodes"]}
    t = {
        k: (datetime.fromisoformat(n["started_at"]), datetime.fromisoformat(n["finished_at"])) for k, n in nodes.items()
    }
    assert t["left"][0] < t["right"][1] and t["right"][0] < t["left"][1], "children run in parallel"
    assert t["join"][0] >= max(t["left"][1], t["right"][1]), "the callback runs after all children"
    logs = api(alice).get(f"/api/v1/jobs/{nodes['join']['id']}/logs/").json()
    assert "left\nright\n" in "".join(c["text"] for c in logs["chunks"])

"""Jobflows from accli task trees, run for real by Celery workers on the local backend."""

import time
from datetime import datetime

import pytest

from tests.conftest import wait_for_status

URL = "/api/v1/aterm-cli/demo/jobs/dispatch/"


def task(name, command, **extra):
    return {
        "is_holder_job": False,
        "name": name,
        "execute_cluster": "WKUBE",
        "job_args": [],
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": command, **extra.pop("kw", {})},
        "required_cores": 0.5,
        "required_ram": 268435456.0,
        "timeout": 120,
        "job_secrets": {},
        "children": extra.pop("children", []),
        "callback": extra.pop("callback", None),
        **extra,
    }


def holder(name, children, callback=None):
    return {"is_holder_job": True, "name": name, "job_kwargs": {}, "children": children, "callback": callback}


def seed_like_tree(fail_b=False):
    """prep -> (model_a || model_b) -> combine, then finisher after everything; files pass through the pipe."""
    combine = task(
        "combine",
        'mkdir -p out; cat "$ACC_PIPE_DIR/a.txt" "$ACC_PIPE_DIR/b.txt" > out/combined.txt',
        kw={"conf": {"output_mappings": "/code/out/:acc://demo/flow/"}},
    )
    model = 'sleep 1.5; echo "{m} saw $(cat $ACC_PIPE_DIR/prep.txt)" > "$ACC_PIPE_DIR/{m}.txt"'
    prep = task(
        "prep",
        'echo prepared > "$ACC_PIPE_DIR/prep.txt"',
        children=[
            task("model_a", model.format(m="a"), callback=combine),
            task("model_b", model.format(m="b") + ("; exit 4" if fail_b else ""), callback=dict(combine)),
        ],
    )
    return holder("seed flow", [prep], callback=task("finisher", "echo finished"))


def nodes_of(api, user, root_id):
    body = api(user).get(f"/api/v1/jobs/{root_id}/").json()
    return body, {n["node"]: n for n in body["nodes"]}


def ts(value):
    return datetime.fromisoformat(value)


def test_a_tree_runs_in_order_in_parallel_and_shares_the_pipe(start_worker, api, project, alice):
    start_worker("local", concurrency=4)
    root_id = api(alice).post(URL, seed_like_tree(), format="json").json()["job_id"]
    root = wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=90)
    body, nodes = nodes_of(api, alice, root_id)
    assert root.status == "SUCCEEDED", body
    assert set(nodes) == {"prep", "model_a", "model_b", "combine", "finisher"}
    assert nodes["combine"]["after"] == ["model_a", "model_b"] or set(nodes["combine"]["after"]) == {
        "model_a",
        "model_b",
    }
    a, b, prep, combine, fin = (nodes[k] for k in ("model_a", "model_b", "prep", "combine", "finisher"))
    assert ts(prep["finished_at"]) <= ts(a["started_at"]) and ts(prep["finished_at"]) <= ts(b["started_at"])
    assert ts(a["started_at"]) < ts(b["finished_at"]) and ts(b["started_at"]) < ts(a["finished_at"]), "parallel"
    assert ts(combine["started_at"]) >= max(ts(a["finished_at"]), ts(b["finished_at"]))
    assert ts(fin["started_at"]) >= ts(combine["finished_at"])
    download = api(alice).get("/api/v1/projects/demo/files/flow/combined.txt")
    assert b"".join(download.streaming_content) == b"a saw prepared\nb saw prepared\n"


def test_a_failed_node_skips_its_descendants_and_fails_the_run(start_worker, api, project, alice):
    start_worker("local", concurrency=4)
    root_id = api(alice).post(URL, seed_like_tree(fail_b=True), format="json").json()["job_id"]
    root = wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=90)
    _, nodes = nodes_of(api, alice, root_id)
    assert root.status == "FAILED"
    assert {k: n["status"] for k, n in nodes.items()} == {
        "prep": "SUCCEEDED",
        "model_a": "SUCCEEDED",
        "model_b": "FAILED",
        "combine": "SKIPPED",
        "finisher": "SKIPPED",
    }
    assert "model_b ended FAILED" in nodes["combine"]["message"]
    assert "model_b (FAILED)" in root.message and "skipped: combine, finisher" in root.message


def test_cancelling_the_root_cancels_every_node(start_worker, api, project, alice):
    start_worker("local", concurrency=4)
    tree = holder("slow", [task("one", "sleep 60", callback=task("two", "true"))])
    root_id = api(alice).post(URL, tree, format="json").json()["job_id"]
    deadline = time.monotonic() + 30
    while nodes_of(api, alice, root_id)[1]["one"]["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    started = time.monotonic()
    api(alice).post(f"/api/v1/jobs/{root_id}/cancel/")
    root = wait_for_status(root_id, "CANCELLED", timeout=10)
    assert time.monotonic() - started < 5
    _, nodes = nodes_of(api, alice, root_id)
    assert nodes["one"]["status"] == "CANCELLED" and nodes["two"]["status"] == "CANCELLED"
    assert root.error_code == "cancelled"


def test_strangers_cannot_read_a_flow(api, project, alice, charlie, transactional_db):
    root_id = api(alice).post(URL, seed_like_tree(), format="json").json()["job_id"]
    assert api(charlie).get(f"/api/v1/jobs/{root_id}/").status_code == 404


FLAKY_ONCE = 'if [ -f "$ACC_PIPE_DIR/{m}.seen" ]; then echo {m} ok; else touch "$ACC_PIPE_DIR/{m}.seen"; exit 1; fi'


def native(nodes, edges):
    return {"format": "acc-dag/1", "name": "native", "nodes": nodes, "edges": edges}


def native_node(node_id, command, **extra):
    return {
        "id": node_id,
        "name": node_id,
        "timeout": 60,
        "required_cores": 0.5,
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": command},
        **extra,
    }


def test_a_node_with_retries_is_tried_again_with_backoff(start_worker, api, project, alice):
    start_worker("local", concurrency=4)
    dag = native(
        [
            native_node("flaky", FLAKY_ONCE.format(m="flaky"), retries=2, retry_backoff=0.5),
            native_node("after", "echo after"),
        ],
        [["flaky", "after"]],
    )
    root_id = api(alice).post(URL, dag, format="json").json()["job_id"]
    root = wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=60)
    _, nodes = nodes_of(api, alice, root_id)
    assert root.status == "SUCCEEDED"
    assert nodes["flaky"]["attempt"] == 2 and nodes["flaky"]["status"] == "SUCCEEDED"
    from jobs.models import Job

    first, second = Job.objects.filter(flow_run__root_id=root_id, node_key="flaky").order_by("attempt")
    assert first.status == "FAILED" and (second.running_at - first.finished_at).total_seconds() >= 0.5


def test_retry_reruns_only_what_failed_or_was_skipped(start_worker, api, project, alice):
    start_worker("local", concurrency=4)
    dag = native(
        [
            native_node("ok", 'echo fine > "$ACC_PIPE_DIR/ok.txt"'),
            native_node("flaky", FLAKY_ONCE.format(m="flaky")),
            native_node("last", 'cat "$ACC_PIPE_DIR/ok.txt"'),
        ],
        [["ok", "last"], ["flaky", "last"]],
    )
    root_id = api(alice).post(URL, dag, format="json").json()["job_id"]
    assert wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=60).status == "FAILED"
    _, before = nodes_of(api, alice, root_id)
    assert before["last"]["status"] == "SKIPPED"

    response = api(alice).post(f"/api/v1/jobs/{root_id}/retry/")
    assert response.status_code == 202
    root = wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=60)
    _, after = nodes_of(api, alice, root_id)
    assert root.status == "SUCCEEDED"
    assert after["ok"]["id"] == before["ok"]["id"] and after["ok"]["attempt"] == 1, "a success is not re-run"
    assert after["flaky"]["attempt"] == 2 and after["last"]["attempt"] == 2
    logs = api(alice).get(f"/api/v1/jobs/{after['last']['id']}/logs/").json()
    assert "fine" in "".join(c["text"] for c in logs["chunks"]), "the retried node still sees its parents' files"
    again = api(alice).post(f"/api/v1/jobs/{root_id}/retry/")
    assert again.status_code == 400 and "only a FAILED or CANCELLED run" in again.json()["detail"]


@pytest.mark.docker
def test_nodes_share_files_through_mnt_pipe_on_docker(start_worker, api, project, alice, docker_client):
    start_worker("docker", concurrency=4)
    dag = native(
        [
            native_node("write", "echo from-the-first-node > /mnt/pipe/shared.txt"),
            native_node("read", "cat /mnt/pipe/shared.txt"),
        ],
        [["write", "read"]],
    )
    root_id = api(alice).post(URL, dag, format="json").json()["job_id"]
    root = wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=60)
    _, nodes = nodes_of(api, alice, root_id)
    logs = api(alice).get(f"/api/v1/jobs/{nodes['read']['id']}/logs/").json()
    assert root.status == "SUCCEEDED", nodes
    assert "from-the-first-node" in "".join(c["text"] for c in logs["chunks"])
    deadline = time.monotonic() + 10  # removed right after the run's final state is committed
    while docker_client.volumes.list(filters={"name": f"acc-pipe-run-{root_id}-"}):
        assert time.monotonic() < deadline, "the run's volume is removed when it succeeded"
        time.sleep(0.1)

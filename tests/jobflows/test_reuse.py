"""The build-system cache on jobflows: a repeated flow is answered node by node, an edit re-runs its dependents."""

import io
import time

import pytest

from files import services as files
from jobs.models import Job
from tests.conftest import wait_for_status
from tests.jobflows.test_flow_runs import URL, holder, nodes_of, task

PIPE = "${ACC_PIPE_DIR:-/mnt/pipe}"


def flow():
    """prep -> (model_a reading a parameter file || model_b) -> combine; finisher after all of it."""
    combine = task(
        "combine",
        f'mkdir -p out; cat "{PIPE}/a.txt" "{PIPE}/b.txt" > out/combined.txt',
        kw={"conf": {"output_mappings": "/code/out/:acc://demo/flow/"}},
    )
    model_a = task(
        "model_a",
        f'echo "a saw $(cat {PIPE}/prep.txt) with $(cat params.txt)" > "{PIPE}/a.txt"',
        kw={"conf": {"input_mappings": "acc://demo/data/a-params.txt:/code/params.txt"}},
        callback=combine,
    )
    model_b = task("model_b", f'echo "b saw $(cat {PIPE}/prep.txt)" > "{PIPE}/b.txt"', callback=dict(combine))
    prep = task("prep", f'echo prepared > "{PIPE}/prep.txt"', children=[model_a, model_b])
    return holder("cached flow", [prep], callback=task("finisher", f"ls {PIPE}"))


def combined(api, user) -> bytes:
    return b"".join(api(user).get("/api/v1/projects/demo/files/flow/combined.txt").streaming_content)


def run_flow(api, user, timeout=90):
    started = time.perf_counter()
    root_id = api(user).post(URL, flow(), format="json").json()["job_id"]
    root = wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=timeout)
    body, nodes = nodes_of(api, user, root_id)
    assert root.status == "SUCCEEDED", {
        k: (n["status"], Job.objects.get(pk=n["id"]).message, log_of(api, user, n["id"])[-300:])
        for k, n in nodes.items()
    }
    return nodes, time.perf_counter() - started


def log_of(api, user, job_id) -> str:
    return "".join(c["text"] for c in api(user).get(f"/api/v1/jobs/{job_id}/logs/").json()["chunks"])


def write_params(project, text: bytes):
    files.write_file(project=project, relpath="data/a-params.txt", stream=io.BytesIO(text))


def check_reuse_and_partial_rerun(api, project, alice):
    write_params(project, b"alpha")
    fresh, fresh_seconds = run_flow(api, alice)
    assert all(n["reused_from"] is None for n in fresh.values())
    first = combined(api, alice)
    assert first == b"a saw prepared with alpha\nb saw prepared\n"

    again, again_seconds = run_flow(api, alice)
    assert {k: n["reused_from"] for k, n in again.items()} == {k: n["id"] for k, n in fresh.items()}
    assert all(n["started_at"] is None for n in again.values()), "a reused node starts no container"
    assert combined(api, alice) == first
    assert again_seconds < fresh_seconds

    write_params(project, b"beta")
    edited, _ = run_flow(api, alice)
    rerun = {k for k, n in edited.items() if n["reused_from"] is None}
    assert rerun == {"model_a", "combine", "finisher"}, "exactly the nodes that depend on the edited input"
    assert edited["prep"]["reused_from"] == fresh["prep"]["id"]
    assert edited["model_b"]["reused_from"] == fresh["model_b"]["id"]
    # combine read b.txt and model_a read prep.txt, both restored into this run's /mnt/pipe from the cache
    assert combined(api, alice) == b"a saw prepared with beta\nb saw prepared\n"
    why = api(alice).get(f"/api/v1/jobs/{edited['combine']['id']}/why/").json()
    assert why["nearest"]["differences"] == ["upstream.model_a"]


def test_a_repeated_flow_is_reused_and_an_edit_reruns_only_its_dependents(start_worker, api, project, alice):
    start_worker("local", concurrency=4)
    check_reuse_and_partial_rerun(api, project, alice)


@pytest.mark.docker
def test_reuse_restores_the_workflow_volume_on_docker(start_worker, api, project, alice, settings):
    settings.ACC_BACKEND = "docker"
    start_worker("docker", concurrency=4)
    check_reuse_and_partial_rerun(api, project, alice)
    assert not Job.objects.filter(flow_run__isnull=False, reused_from__isnull=False).exclude(backend_state={}).exists()


def test_a_failed_node_is_never_reused(start_worker, api, project, alice):
    start_worker("local", concurrency=2)
    tree = holder("fails", [task("bad", "exit 3")])
    first = api(alice).post(URL, tree, format="json").json()["job_id"]
    assert wait_for_status(first, {"SUCCEEDED", "FAILED"}).status == "FAILED"
    second = api(alice).post(URL, tree, format="json").json()["job_id"]
    assert wait_for_status(second, {"SUCCEEDED", "FAILED"}).status == "FAILED"
    _, nodes = nodes_of(api, alice, second)
    assert nodes["bad"]["reused_from"] is None and nodes["bad"]["exit_code"] == 3


@pytest.mark.parametrize("backend", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_a_node_filling_the_pipe_past_its_size_fails(backend, start_worker, api, project, alice):
    start_worker(backend)
    big = task("big", f'head -c 3000000 /dev/zero > "{PIPE}/big.bin"', required_storage_workflow=2 * 1024**2)
    tree = holder("too big", [task("small", f'echo ok > "{PIPE}/small.txt"', children=[big])])
    root_id = api(alice).post(URL, tree, format="json").json()["job_id"]
    assert wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=60).status == "FAILED"
    _, nodes = nodes_of(api, alice, root_id)
    assert nodes["small"]["status"] == "SUCCEEDED"
    assert nodes["big"]["status"] == "FAILED"
    assert "required_storage_workflow of 2.0 MiB" in nodes["big"]["message"]

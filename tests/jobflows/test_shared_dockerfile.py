"""Parallel jobflow nodes that share a Dockerfile build its image once, and a repeated flow reuses every node.

Regression: four children of one node, on one Dockerfile folder (one content
tag), built it at the same time; the tag ended on the last image built while
the others recorded their own digest, so an identical dispatch missed the
cache for them and re-ran everything after. Builds of a tag are now
single-flight: the others wait for the builder and use its image. The race
needs overlapping builds, so this runs on a loaded machine with four worker
threads and a build that takes a couple of seconds.
"""

import os
import secrets
import shutil
import signal
import subprocess

import pytest

from jobs import backend_spec
from jobs.models import Job
from tests.conftest import wait_for_status
from tests.files.helpers import put_folder
from tests.jobflows.test_flow_runs import URL, native
from tests.jobflows.test_reuse import log_of

pytestmark = pytest.mark.docker

CHILDREN = [f"child{n}" for n in range(1, 5)]
DOCKERFILE = b"""FROM acc-test/busybox:latest
COPY nonce.txt /opt/nonce.txt
RUN sleep 2
"""
STACK = {"kind": "docker_filename", "dockerfile": "Dockerfile"}  # what dispatch makes of docker_filename="Dockerfile"
RESOURCES = {"timeout": 120, "required_cores": 0.5, "required_ram": 128 * 1024**2}


@pytest.fixture
def cpu_load():
    """Two busy CPUs (stress-ng) for the whole test: the builds and the worker's threads compete for time."""
    if shutil.which("stress-ng") is None:
        pytest.fail(
            "stress-ng is missing: this test runs under CPU load. Install it with `apt-get install -y stress-ng` "
            "(scripts/services.sh should do it).",
            pytrace=False,
        )
    proc = subprocess.Popen(
        ["stress-ng", "--cpu", "2", "--timeout", "0", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the stressors it forks end with it
    )
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture
def shared_folder(project, docker_client):
    """A job folder with the Dockerfile, in the jobstore; a nonce makes its tag new on every test run.

    Yields (manifest sha1, the tag it builds, a set the test adds the image ids it saw to); the images are
    removed at the end (best effort: a leftover only costs disk).
    """
    sha = put_folder(
        project,
        {"Dockerfile": (DOCKERFILE, 0o100644), "nonce.txt": (secrets.token_hex(16).encode(), 0o100644)},
    )
    tag = backend_spec.build_tag(STACK, sha)
    seen: set[str] = set()
    yield sha, tag, seen
    for image in [tag, *seen]:
        try:
            docker_client.images.remove(image, force=True)
        except Exception:
            pass


def node(node_id, command, stack=None):
    stack = stack or {"docker_image": "acc-test/busybox:latest"}
    return {"id": node_id, "name": node_id, **RESOURCES, "job_kwargs": {**stack, "command": command}}


def flow(sha):
    """root -> child1..child4 (one Dockerfile folder, each its own command) -> sink."""
    folder = {"docker_filename": "Dockerfile", "repo_url": f"s3accjobstore://manifest_{sha}.json"}
    children = [node(c, f"echo {c} saw $(cat /mnt/pipe/root.txt) > /mnt/pipe/{c}.txt", folder) for c in CHILDREN]
    nodes = [node("root", "echo root > /mnt/pipe/root.txt"), *children, node("sink", "cat /mnt/pipe/child*.txt")]
    edges = [["root", c] for c in CHILDREN] + [[c, "sink"] for c in CHILDREN]
    return native(nodes, edges)


def run(api, alice, body) -> tuple[Job, dict[str, Job]]:
    root_id = api(alice).post(URL, body, format="json").json()["job_id"]
    root = wait_for_status(root_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=150)
    nodes = {j.node_key: j for j in Job.objects.filter(flow_run__root_id=root_id).exclude(node_key="")}
    return root, nodes


def explain(api, alice, nodes) -> str:
    """Everything needed to tell why a run went wrong: each node's status, image, reuse and log."""
    return "\n".join(
        f"--- {k} #{j.pk} {j.status} image={j.image} reused_from={j.reused_from_id} {j.message}\n"
        f"{log_of(api, alice, j.pk)}"
        for k, j in sorted(nodes.items())
    )


def test_parallel_nodes_build_a_shared_dockerfile_once_and_a_repeat_reuses_every_node(
    cpu_load, start_worker, api, project, alice, settings, docker_client, shared_folder
):
    sha, tag, seen = shared_folder
    settings.ACC_BACKEND = "docker"  # the dispatch's cache lookup asks the same backend as the worker
    start_worker("docker", concurrency=4)

    root, first = run(api, alice, flow(sha))
    seen.update(first[c].image for c in CHILDREN if first[c].image)
    text = explain(api, alice, first)
    assert root.status == "SUCCEEDED", text
    assert set(first) == {"root", *CHILDREN, "sink"}
    assert all(j.status == "SUCCEEDED" for j in first.values()), text
    assert all(first[c].reused_from_id is None for c in CHILDREN), "a fresh tag: every child ran"
    assert "child4 saw root" in log_of(api, alice, first["sink"].pk)

    # one image: the tag's, and every child recorded and ran in it
    digests = {c: (first[c].image, first[c].identity["stack"]["digest"]) for c in CHILDREN}
    assert set(digests.values()) == {(docker_client.images.get(tag).id,) * 2}, digests

    logs = {c: log_of(api, alice, first[c].pk) for c in CHILDREN}
    builders = [c for c in CHILDREN if "Building the image" in logs[c]]
    assert len(builders) == 1, f"the tag was built by {builders}\n{text}"
    others = [c for c in CHILDREN if c not in builders]
    assert any(
        "Waiting for another job that builds" in logs[c] or "Using the cached image" in logs[c] for c in others
    ), text
    # the builds must have overlapped, or this run did not exercise the race it guards against
    built_at = first[builders[0]].mapping_inputs_at
    assert any(first[c].building_at < built_at for c in others), {
        c: (first[c].building_at, first[c].mapping_inputs_at) for c in CHILDREN
    }

    again_root, again = run(api, alice, flow(sha))
    text = explain(api, alice, again)
    assert again_root.status == "SUCCEEDED", text
    assert {k: j.reused_from_id for k, j in again.items()} == {k: j.pk for k, j in first.items()}, text
    assert all(j.running_at is None for j in again.values()), "a reused node starts no container"

"""A hosted jobflow through the portal API: alice publishes a two-node flow she ran; carol launches it with her
input and conf, follows the status URL and downloads outputs that reflect both."""

import time

import pytest

from hosting import services as hosting
from jobflows.services import dispatch_flow
from jobs.models import Job
from tests.conftest import wait_for_status
from tests.hosting.conftest import write

pytestmark = pytest.mark.django_db(transaction=True)

PREP = (
    '{ echo "n=$n"; if [ -f in/data.txt ]; then cat in/data.txt; else echo "no data"; fi; } > "$ACC_PIPE_DIR/prep.txt"'
)
REPORT = (
    'mkdir -p out; { echo "report for n=$n"; cat "$ACC_PIPE_DIR/prep.txt"; echo "squared=$((n*n))"; } > out/report.txt'
)


def node(node_id, command):
    return {
        "id": node_id,
        "name": node_id,
        "timeout": 60,
        "required_cores": 0.5,
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": command, "conf": {"n": "2"}},
    }


def poll(client, url, timeout=90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(url).json()
        if run["status"] in ("SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT") or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def test_a_hosted_jobflow_runs_with_the_launchers_input_and_conf(api, start_worker, project, alice, carol):
    start_worker("local", concurrency=4)
    dag = {"format": "acc-dag/1", "name": "report", "nodes": [node("prep", PREP), node("report", REPORT)]}
    root = dispatch_flow(project=project, user=alice, body={**dag, "edges": [["prep", "report"]]})
    assert wait_for_status(root.pk, {"SUCCEEDED", "FAILED"}, timeout=60).status == "SUCCEEDED"

    published = api(alice).post(
        "/api/v1/hosted/",
        {
            "project": "demo",
            "slug": "flow-report",
            "title": "Report on n",
            "policy": "public",
            "jobflow": root.pk,
            "conf_schema": {
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 1}},
                "required": ["n"],
            },
            "inputs_schema": [
                {"name": "data", "kind": "file", "required": True, "target": "/code/in/data.txt", "node": "prep"}
            ],
            "outputs": [{"path": "/code/out/", "name": "report", "node": "report"}],
        },
        format="json",
    )
    assert published.status_code == 201, published.content
    assert published.json()["kind"] == "jobflow" and published.json()["versions"][0]["nodes"] == ["prep", "report"]

    home = hosting.home_project(carol)
    write(home, "mine/data.txt", b"carol's measurements\n")
    launched = api(carol).post(
        "/api/v1/hosted/flow-report/runs/", {"conf": {"n": 6}, "inputs": {"data": "mine/data.txt"}}, format="json"
    )
    assert launched.status_code == 201, launched.content
    run = poll(api(carol), launched.json()["status_url"])
    assert run["status"] == "SUCCEEDED", run
    nodes = Job.objects.filter(flow_run__root_id=run["job"])
    assert {(j.node_key, j.status, j.project_id) for j in nodes} == {
        ("prep", "SUCCEEDED", home.pk),
        ("report", "SUCCEEDED", home.pk),
    }

    [out] = run["detail"]["outputs"]
    assert out["path"].startswith("hosted/flow-report/") and out["path"].endswith("/report/report.txt")
    assert run["detail"]["output_folder"] == f"acc://{home.slug}/{out['path'].removesuffix('/report/report.txt')}/"
    body = b"".join(api(carol).get(out["url"]).streaming_content)
    assert body == b"report for n=6\nn=6\ncarol's measurements\nsquared=36\n"
    assert api(alice).get(out["url"]).status_code == 404, "the author does not read carol's results"

    missing = api(carol).post("/api/v1/hosted/flow-report/runs/", {"conf": {"n": 6}}, format="json")
    assert missing.status_code == 400 and "Input 'data' (data) is required" in missing.json()["detail"]

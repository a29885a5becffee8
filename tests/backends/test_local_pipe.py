"""The README's jobflow example (section "Jobflows"), run as written on the local backend: its nodes write and
read the workflow volume at /mnt/pipe, as they do on docker."""

import json
import re

from jobs.models import Job, LogChunk
from tests.conftest import ROOT, wait_for_status

URL = "/api/v1/aterm-cli/demo/jobs/dispatch/"


def readme_example() -> dict:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Jobflows", 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "the README's Jobflows section has a JSON example"
    return json.loads(block.group(1))


def test_the_readmes_jobflow_example_writes_and_reads_mnt_pipe_on_local(start_worker, api, project, alice):
    example = readme_example()
    assert any("/mnt/pipe/" in node["job_kwargs"]["command"] for node in example["nodes"])
    start_worker("local", concurrency=2)
    root_id = api(alice).post(URL, example, format="json").json()["job_id"]
    root = wait_for_status(root_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=120)
    nodes = {j.node_key: j for j in Job.objects.filter(flow_run__root_id=root_id)}
    assert root.status == "SUCCEEDED", [(k, j.status, j.exit_code, j.message) for k, j in nodes.items()]
    assert all(j.status == "SUCCEEDED" and j.exit_code == 0 for j in nodes.values())
    stored = api(alice).get("/api/v1/projects/demo/files/pipe-example/combined.txt")
    assert b"".join(stored.streaming_content) == b"sum=10\nproduct=24\n"


def test_without_a_sandbox_a_job_writing_to_mnt_pipe_is_told_where_the_volume_is(start_worker, api, project, alice):
    """Only the sandbox can show the run's pipe folder at /mnt/pipe; unsandboxed (an operator's unsafe choice) the
    log says, before the command's own error, where the volume is and what to write instead."""
    start_worker("local", extra_env={"ACC_LOCAL_BWRAP": "/nonexistent/bwrap", "ACC_LOCAL_UNSANDBOXED_UNSAFE": "true"})
    example = readme_example()
    example["nodes"], example["edges"] = example["nodes"][:1], []
    root_id = api(alice).post(URL, example, format="json").json()["job_id"]
    wait_for_status(root_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=120)
    [node] = Job.objects.filter(flow_run__root_id=root_id)
    text = "".join(LogChunk.objects.filter(job=node).order_by("seq").values_list("text", flat=True))
    assert "workflow volume at /mnt/pipe: it is at $ACC_PIPE_DIR (" in text, text
    assert 'write "$ACC_PIPE_DIR/<file>" instead of /mnt/pipe/<file>' in text

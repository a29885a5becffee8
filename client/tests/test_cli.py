"""The `acc` command against a recording server: exact requests, output, exit codes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import pytest
from acc_client.cli import main
from fakeserver import REFRESH, stored

SEED = """
from acc_client import WKubeTask

RESOURCES = dict(
    required_cores=1,
    required_ram=512 * 1024 * 1024,
    required_storage_local=2 * 1024**3,
    required_storage_workflow=1024**3,
    timeout=3600,
)

# Holder/root task (doesn't execute anything)
flow = WKubeTask()

# Define individual routines
prep = WKubeTask(
    name="Prepare Data",
    job_folder="./prep",
    base_stack="PYTHON3_7",
    command="python prepare.py",
    conf={"output_mappings": "/mnt/pipe/prep/:acc://out/prep/"},
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
    job_secrets={"API_KEY": "s3cr3t"},
    **RESOURCES,
)
combine = WKubeTask(
    name="Combine Results",
    job_folder="./combine",
    base_stack="PYTHON3_7",
    command="python combine.py",
    retries=2,
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
flow.add_child(prep)  # Root → prep
prep.add_callback(model_a)  # prep → model_a
prep.add_callback(model_b)  # prep → model_b
model_a.add_callback(combine)  # model_a → combine
model_b.add_callback(combine)  # model_b → combine
flow.add_callback(finisher)  # Final step after all children complete
"""
FOLDERS = {"prep": "prepare.py", "model_a": "model_a.py", "model_b": "model_b.py", "combine": "combine.py"}
FOLDERS["finisher"] = "finalize.py"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    for folder, script in FOLDERS.items():
        (root / folder).mkdir(parents=True)
        (root / folder / script).write_text(f"print({folder!r})\n")
    (root / "wkube.py").write_text(SEED)
    return root


@pytest.fixture
def platform(server, accli_login):
    """push-url always answers 409 (everything already stored); dispatch returns job 42."""
    server.route("GET", "/api/v1/aterm-cli/demo/jobstore-push-url/", 409, {"detail": "already in the jobstore"})
    server.route("POST", "/api/v1/aterm-cli/demo/jobs/dispatch/", 200, {"job_id": 42})
    return server


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def manifest_sha(folder: str, script: str, mode: int) -> str:
    digest = hashlib.sha1(f"print({folder!r})\n".encode()).hexdigest()
    raw = f'{{"type": "cas_manifest", "files": [{{"path": "{script}", "hash": "{digest}", "mode": {mode}}}]}}'
    return hashlib.sha1(raw.encode()).hexdigest()


def test_dispatch_seed_example(platform, accli_login, project, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "dispatch", "demo", "flow", "-f", "project/wkube.py")
    assert (code, out) == (0, "Dispatched root job #ID: 42\n"), err
    assert os.getcwd() == str(tmp_path)

    (post,) = platform.sent("POST", "/api/v1/aterm-cli/")
    assert post.path == "/api/v1/aterm-cli/demo/jobs/dispatch/"
    assert post.headers["x-authorization"] == "access-1"
    assert post.headers["content-type"] == "application/json"
    dag = post.json
    assert dag["format"] == "acc-dag/1" and dag["name"] is None
    assert dag["required_storage_workflow"] == 1024**3
    assert [n["id"] for n in dag["nodes"]] == ["prepare-data", "model-a", "model-b", "combine-results", "finisher"]
    assert dag["edges"] == [
        ["prepare-data", "model-a"],
        ["prepare-data", "model-b"],
        ["model-a", "combine-results"],
        ["model-b", "combine-results"],
        ["combine-results", "finisher"],
    ]
    prep = dag["nodes"][0]
    sha = manifest_sha("prep", "prepare.py", os.stat(project / "prep" / "prepare.py").st_mode)
    assert prep == {
        "id": "prepare-data",
        "name": "Prepare Data",
        "job_kwargs": {
            "repo_url": f"s3accjobstore://manifest_{sha}.json",
            "repo_branch": sha,
            "base_stack": "PYTHON3_7",
            "command": "python prepare.py",
            "conf": {"output_mappings": "/mnt/pipe/prep/:acc://out/prep/"},
        },
        "required_cores": 1.0,
        "required_ram": 536870912,
        "required_storage_local": 2147483648,
        "required_storage_workflow": 1073741824,
        "timeout": 3600,
        "job_secrets": {},
        "retries": 0,
        "retry_backoff": 10.0,
    }
    assert dag["nodes"][2]["job_secrets"] == {"API_KEY": "s3cr3t"}
    assert dag["nodes"][3]["retries"] == 2
    assert len({n["job_kwargs"]["repo_branch"] for n in dag["nodes"]}) == 5
    pushes = [r.query["filename"][0] for r in platform.sent("GET", "/api/v1/aterm-cli/")]
    assert len(pushes) == 10 and sum(p.startswith("manifest_") for p in pushes) == 5
    assert stored(accli_login)["_default"]["1"]["token"] == "refresh-1"
    assert "s3cr3t" not in err


@pytest.mark.parametrize(
    "script, variable, message",
    [
        ("x = 1\n", "flow", "wkube.py defines no variable 'flow'"),
        ("flow = 1\n", "flow", "'flow' in wkube.py is a builtins.int, not a WKubeTask from acc_client"),
        (
            "from acc_client import WKubeTask\n\nflow = WKubeTask(name='x', base_stack='B')\n",
            "flow",
            "wkube.py line 3: ValueError: WKubeTask 'x': command is required",
        ),
        ("import nonexistent_module_xyz\n", "flow", "wkube.py line 1: ModuleNotFoundError"),
        ("from acc_client import WKubeTask\nflow = WKubeTask()\n", "flow", "flow: nothing to run"),
    ],
)
def test_dispatch_errors_are_one_line_and_touch_nothing(
    platform, accli_login, tmp_path, capsys, script, variable, message
):
    (tmp_path / "wkube.py").write_text(script)
    code, out, err = run(capsys, "dispatch", "demo", variable, "-f", str(tmp_path / "wkube.py"))
    assert code == 1 and out == ""
    assert err.startswith(f"acc: error: {message}") and err.count("\n") == 1, err
    assert platform.requests == []  # no login consumed, nothing uploaded
    assert stored(accli_login)["_default"]["1"]["token"] == REFRESH


def test_dispatch_refused_by_server_shows_its_detail(platform, project, capsys):
    platform.route("POST", "/api/v1/aterm-cli/demo/jobs/dispatch/", 400, {"detail": "Node model-a: bad stack."})
    code, _, err = run(capsys, "dispatch", "demo", "flow", "-f", str(project / "wkube.py"))
    *progress, last = err.splitlines()
    assert len(progress) == 5 and all(line.startswith("Job folder ") for line in progress)
    assert (code, last) == (
        1,
        "acc: error: Node model-a: bad stack. (HTTP 400 from POST /api/v1/aterm-cli/demo/jobs/dispatch/)",
    )


FLOW = {
    "id": 42,
    "name": "jobflow",
    "project": "demo",
    "status": "RUNNING",
    "exit_code": None,
    "message": "",
    "outputs": [],
    "nodes": [
        {"id": 43, "node": "prepare-data", "name": "Prepare Data", "status": "SUCCEEDED",
         "started_at": "2025-01-02T10:00:00.123456Z", "finished_at": "2025-01-02T10:00:05Z", "reused_from": 7},
        {"id": 44, "node": "model-a", "name": "Model A", "status": "RUNNING",
         "started_at": "2025-01-02T10:00:06Z", "finished_at": None, "reused_from": None},
    ],
}  # fmt: skip


def test_status_of_a_flow_prints_its_nodes(platform, capsys):
    platform.route("GET", "/api/v1/jobs/42/", 200, FLOW)
    code, out, _ = run(capsys, "status", "42")
    assert code == 0
    assert out == textwrap.dedent("""\
        Job #42 'jobflow' (jobflow, project demo): RUNNING
        NODE          JOB  NAME          STATUS     STARTED              FINISHED             REUSED_FROM
        prepare-data  43   Prepare Data  SUCCEEDED  2025-01-02 10:00:00  2025-01-02 10:00:05  7
        model-a       44   Model A       RUNNING    2025-01-02 10:00:06  -                    -
        """)
    assert platform.sent("GET")[0].headers["x-authorization"] == "access-1"


def test_status_error_detail(platform, capsys):
    platform.route("GET", "/api/v1/jobs/5/", 404, {"detail": "Job not found, or you have no access to it."})
    code, _, err = run(capsys, "status", "5")
    assert (code, err) == (
        1,
        "acc: error: Job not found, or you have no access to it. (HTTP 404 from GET /api/v1/jobs/5/)\n",
    )


def test_logs_follow_pages_in_order_until_complete(platform, capsys):
    pages = {
        0: [{"chunks": [{"seq": 1, "text": "one\n"}, {"seq": 2, "text": "two\n"}], "last_seq": 2, "complete": False}],
        2: [
            {"chunks": [], "last_seq": 2, "complete": False, "status": "RUNNING"},
            {"chunks": [{"seq": 3, "text": "three\n"}], "last_seq": 3, "complete": True, "status": "SUCCEEDED"},
        ],
    }
    platform.route("GET", "/api/v1/jobs/9/logs/", handler=lambda r: (200, pages[int(r.query["after_seq"][0])].pop(0)))
    code, out, _ = run(capsys, "logs", "-f", "9")
    assert (code, out) == (0, "one\ntwo\nthree\n")
    assert [r.path for r in platform.sent("GET")] == [
        "/api/v1/jobs/9/logs/?after_seq=0",
        "/api/v1/jobs/9/logs/?after_seq=2",
        "/api/v1/jobs/9/logs/?after_seq=2",
    ]


def test_logs_without_follow_stop_at_the_end_of_what_is_there(platform, capsys):
    pages = [
        {"chunks": [{"seq": 1, "text": "one\n"}], "last_seq": 1, "complete": False},
        {"chunks": [], "last_seq": 1, "complete": False},
    ]
    platform.route("GET", "/api/v1/jobs/9/logs/", handler=lambda r: (200, pages.pop(0)))
    assert run(capsys, "logs", "9")[:2] == (0, "one\n")


def test_logs_follow_gives_up_after_max_wait(platform, capsys):
    platform.route(
        "GET", "/api/v1/jobs/9/logs/", 200, {"chunks": [], "last_seq": 0, "complete": False, "status": "QUEUED"}
    )
    platform.route("GET", "/api/v1/jobs/9/", 200, {"id": 9, "status": "QUEUED", "nodes": None})
    code, _, err = run(capsys, "logs", "-f", "--max-wait", "3", "9")
    assert code == 1 and "gave up following job #9 after 3 s (it is QUEUED)" in err


def test_logs_of_a_flow_root_point_at_its_nodes(platform, capsys):
    platform.route("GET", "/api/v1/jobs/42/logs/", 200, {"chunks": [], "last_seq": 0, "complete": False})
    platform.route("GET", "/api/v1/jobs/42/", 200, FLOW)
    code, out, err = run(capsys, "logs", "-f", "42")
    assert (code, out) == (0, "")
    assert "logs are per node: acc logs <JOB> with one of 43 (prepare-data), 44 (model-a)" in err


def test_cancel(platform, capsys):
    platform.route("POST", "/api/v1/jobs/42/cancel/", 202, {"id": 42, "status": "RUNNING"})
    code, out, _ = run(capsys, "cancel", "42")
    assert (code, out) == (0, "Cancel requested for job #42: RUNNING\n")
    (req,) = platform.sent("POST", "/api/v1/jobs/")
    assert req.headers["x-authorization"] == "access-1"


def output(path: str, data: bytes) -> dict:
    url = f"/api/v1/projects/demo/files/{path}"
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "url": url}


def test_outputs_of_a_flow_are_downloaded_and_verified(platform, tmp_path, capsys):
    a, b = b"x,y\n1,2\n", b"done\n"
    platform.route("GET", "/api/v1/jobs/42/", 200, {**FLOW, "outputs": []})
    platform.route("GET", "/api/v1/jobs/43/", 200, {"id": 43, "outputs": [output("out/a.csv", a)]})
    platform.route("GET", "/api/v1/jobs/44/", 200, {"id": 44, "outputs": [output("out/sub/b.txt", b)]})
    platform.route("GET", "/api/v1/projects/demo/files/out/a.csv", 200, a)
    platform.route("GET", "/api/v1/projects/demo/files/out/sub/b.txt", 200, b)
    code, out, err = run(capsys, "outputs", "42", "-o", str(tmp_path / "dl"))
    assert code == 0, err
    assert (tmp_path / "dl" / "out" / "a.csv").read_bytes() == a
    assert (tmp_path / "dl" / "out" / "sub" / "b.txt").read_bytes() == b
    assert out.splitlines()[-1] == f"Downloaded 2 files to {tmp_path / 'dl'}"
    files = platform.sent("GET", "/api/v1/projects/")
    assert all(r.headers["x-authorization"] == "access-1" for r in files) and len(files) == 2


def test_outputs_with_a_wrong_sha256_are_not_kept(platform, tmp_path, capsys):
    bad = {**output("out/a.csv", b"expected"), "url": "/api/v1/projects/demo/files/out/a.csv"}
    platform.route("GET", "/api/v1/jobs/5/", 200, {"id": 5, "outputs": [bad], "nodes": None})
    platform.route("GET", "/api/v1/projects/demo/files/out/a.csv", 200, b"tampered")
    code, _, err = run(capsys, "outputs", "5", "-o", str(tmp_path / "dl"))
    assert (code, err) == (1, "acc: error: sha256 mismatch, not kept: out/a.csv\n")
    assert list((tmp_path / "dl" / "out").iterdir()) == []


def test_outputs_never_write_outside_the_folder(platform, tmp_path, capsys):
    platform.route("GET", "/api/v1/jobs/5/", 200, {"id": 5, "outputs": [output("../evil", b"x")], "nodes": None})
    code, _, err = run(capsys, "outputs", "5", "-o", str(tmp_path / "dl"))
    assert code == 1 and "refusing output path '../evil'" in err
    assert not (tmp_path / "evil").exists()


def test_console_entry_point_exit_code_and_one_line_error(home):
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "acc_client", "status", "1"], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert done.stderr == f"acc: error: not logged in: run `accli login` first (no {home}/.accli/data.json)\n"
    usage = subprocess.run([sys.executable, "-m", "acc_client", "logs"], capture_output=True, text=True, env=env)
    assert usage.returncode == 1 and usage.stderr.count("\n") == 1 and "Traceback" not in usage.stderr

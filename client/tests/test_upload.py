"""Content-addressed job-folder upload, asserted request by request against a recording server."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from acc_client import WKubeTask
from acc_client.api import Api
from acc_client.upload import upload_job_folders

PUSH = "/api/v1/aterm-cli/demo/jobstore-push-url/"


@pytest.fixture
def jobstore(server):
    """push-url answers 409 for what `have` holds, else a signed URL below /upload/ that stores the PUT."""
    have: dict[str, bytes] = {}

    def push_url(req):
        name = req.query["filename"][0]
        if name in have:
            return 409, {"detail": "already in the jobstore"}
        return 200, f"{server.url}/upload/{name}?sig=abc"

    def put(req):
        name = req.path.split("/upload/")[1].split("?")[0]
        if name.startswith("cas_") and hashlib.sha1(req.body).hexdigest() != name[4:-5]:
            return 400, {"detail": "sha1 mismatch"}
        have[name] = req.body
        return 200, {}

    server.route("GET", PUSH, handler=push_url)
    server.route("PUT", "/upload/*", handler=put)
    return have


@pytest.fixture
def api(server):
    return Api(server.url, token=lambda: "access-1", sleep=lambda s: None)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    root = tmp_path / "job"
    (root / "data").mkdir(parents=True)
    (root / "main.py").write_text("print('hi')\n")
    (root / "data" / "x.csv").write_text("a,b\n1,2\n")
    (root / "wkube.py").write_text("# dropped\n")
    os.chmod(root / "main.py", 0o755)
    monkeypatch.chdir(tmp_path)
    return root


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def test_blobs_then_manifest_exact_requests(server, jobstore, api, folder):
    task = WKubeTask(name="t", job_folder="job", base_stack="PYTHON3_7", command="python main.py")
    code = upload_job_folders(api, "demo", [task])

    main, csv = (folder / "main.py").read_bytes(), (folder / "data" / "x.csv").read_bytes()
    manifest = {
        "type": "cas_manifest",
        "files": [
            {"path": "data/x.csv", "hash": sha1(csv), "mode": os.stat(folder / "data" / "x.csv").st_mode},
            {"path": "main.py", "hash": sha1(main), "mode": os.stat(folder / "main.py").st_mode},
        ],
    }
    raw = json.dumps(manifest).encode()
    assert code == {task: {"repo_url": f"s3accjobstore://manifest_{sha1(raw)}.json", "repo_branch": sha1(raw)}}
    assert manifest["files"][1]["mode"] == 0o100755

    gets = server.sent("GET")
    assert sorted(r.path for r in gets[:2]) == sorted(
        [f"{PUSH}?filename=cas_{sha1(main)}.blob", f"{PUSH}?filename=cas_{sha1(csv)}.blob"]
    )
    assert gets[2].path == f"{PUSH}?filename=manifest_{sha1(raw)}.json"  # the manifest goes last
    assert all(r.headers["x-authorization"] == "access-1" for r in gets)

    puts = server.sent("PUT")
    assert {r.path: r.body for r in puts} == {
        f"/upload/cas_{sha1(main)}.blob?sig=abc": main,
        f"/upload/cas_{sha1(csv)}.blob?sig=abc": csv,
        f"/upload/manifest_{sha1(raw)}.json?sig=abc": raw,
    }
    for put in puts:  # a signed URL carries its own authorisation; the token never leaves the API
        assert "x-authorization" not in put.headers and "content-type" not in put.headers
        assert put.headers["content-length"] == str(len(put.body))
    assert b"dropped" not in b"".join(jobstore.values())


def test_known_blobs_are_not_uploaded_again(server, jobstore, api, folder):
    main = (folder / "main.py").read_bytes()
    jobstore[f"cas_{sha1(main)}.blob"] = main
    task = WKubeTask(job_folder="job", base_stack="PYTHON3_7", command="python main.py")
    reports = []
    upload_job_folders(api, "demo", [task], report=reports.append)
    assert [r.path.split("?")[0].split("/")[-1][:4] for r in server.sent("PUT")] == ["cas_", "mani"]
    assert f"cas_{sha1(main)}" not in " ".join(r.path for r in server.sent("PUT"))
    assert reports[0].startswith(f"Job folder {folder}: 2 files, 1 uploaded, manifest ")


def test_one_upload_per_folder_and_filters(server, jobstore, api, folder):
    a = WKubeTask(job_folder="job", base_stack="B", command="x")
    b = WKubeTask(job_folder="./job/", base_stack="B", command="y")
    c = WKubeTask(job_folder="job", base_stack="B", command="z", include="*.py")
    d = WKubeTask(docker_image="alpine", command="true")
    code = upload_job_folders(api, "demo", [a, b, c, d])
    assert code[a] == code[b] != code[c] and d not in code
    manifests = [r for r in server.sent("PUT") if "/manifest_" in r.path]
    assert len(manifests) == 2
    assert [f["path"] for f in json.loads(manifests[-1].body)["files"]] == ["main.py"]


def test_put_is_retried_with_the_whole_body(server, jobstore, api, folder):
    failures = {"left": 1}
    store = server.routes[("PUT", "/upload/*")]

    def flaky(req):
        if failures["left"]:
            failures["left"] -= 1
            return 503, {"detail": "busy"}
        return store(req)

    server.route("PUT", "/upload/*", handler=flaky)
    task = WKubeTask(job_folder="job", base_stack="B", command="x", include="main.py")
    upload_job_folders(api, "demo", [task])
    bodies = [r.body for r in server.sent("PUT") if "/cas_" in r.path]
    assert bodies == [b"print('hi')\n", b"print('hi')\n"]

"""The real accli 2.0.14 client uploads a job folder to a live server; it materialises byte for byte.

Only the client's login state (server URL, project, token exchange) is stubbed: that
is the accounts app's endpoint. Push URLs, uploads and 409 skips are the real client's code.
"""

import stat

import pytest
from accli import AcceleratorTaskDispatcher as dispatcher

from accounts.services import issue_token_pair
from files import code, jobstore


@pytest.fixture
def accli_logged_in(monkeypatch, live_server, alice, project):
    token = issue_token_pair(user=alice)["access_token"]
    monkeypatch.setattr(dispatcher, "get_server_url", lambda: live_server.url)
    monkeypatch.setattr(dispatcher, "get_project_slug", lambda: project.slug)
    monkeypatch.setattr(dispatcher, "exchange_refresh_token", lambda slug: (None, token, None))


@pytest.fixture
def job_folder(tmp_path):
    folder = tmp_path / "job"
    (folder / "data").mkdir(parents=True)
    (folder / "main.py").write_text("print('hello')\n")
    (folder / "run.sh").write_text("#!/bin/sh\npython main.py\n")
    (folder / "run.sh").chmod(0o755)
    (folder / "data/x.csv").write_bytes(b"a,b\n1,2\n")
    (folder / "data/same.csv").write_bytes(b"a,b\n1,2\n")  # same blob twice: one upload, one 409 or race
    (folder / "wkube.py").write_text("# removed by the client\n")
    return folder


@pytest.mark.django_db(transaction=True)
def test_accli_push_folder_job_round_trip(accli_logged_in, job_folder, project, tmp_path, capsys):
    repo_url, manifest_sha = dispatcher.push_folder_job.__wrapped__(str(job_folder))
    assert repo_url == f"s3accjobstore://manifest_{manifest_sha}.json"
    assert jobstore.exists(project=project, filename=f"manifest_{manifest_sha}.json")

    dest = tmp_path / "code"
    code.materialize(project=project, repo_url=repo_url, repo_branch=manifest_sha, dest=dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "data/same.csv",
        "data/x.csv",
        "main.py",
        "run.sh",
    ]
    assert (dest / "data/x.csv").read_bytes() == b"a,b\n1,2\n"
    assert stat.S_IMODE((dest / "run.sh").stat().st_mode) == 0o755

    capsys.readouterr()
    again, _ = dispatcher.push_folder_job.__wrapped__(str(job_folder))
    assert again == repo_url
    assert "Skipped main.py (already in jobstore)." in capsys.readouterr().out

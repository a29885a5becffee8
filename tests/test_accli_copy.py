"""The real `accli==2.0.14` (and its hf_xet) copies folders to and from a project over the Xet protocol.

The client talks to the live server through a relay that counts the bytes that really reach the server,
so deduplication is measured, not assumed.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
from pathlib import Path

import pytest

from files import services as files
from files.models import XorbAccess
from routines.models import Membership, Project, Role
from tests.conftest import ACCLI, wait_for_status, web_code
from tests.xet_proxy import CountingRelay

MiB = 1024 * 1024
pytestmark = pytest.mark.django_db(transaction=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def relay(live_server):
    host, port = live_server.url.removeprefix("http://").split(":")
    proxy = CountingRelay(host, int(port))
    yield proxy
    proxy.close()


def login(home: Path, relay: CountingRelay, live_server, username: str, password: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    code = web_code(live_server.url, username, password)
    done = subprocess.run(
        [ACCLI, "login", "-s", relay.url, "-c", relay.url],
        input=code + "\n",
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode == 0 and "Successfully logged in" in done.stdout, done.stdout + done.stderr
    return home


def copy(home: Path, source: str, destination: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ACCLI, "copy", source, destination],
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        timeout=timeout,
    )


def stored(project: Project, relpath: str) -> bytes:
    with files.open_file(project=project, relpath=relpath) as fh:
        return fh.read()


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256(p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def folder(tmp_path) -> Path:
    """Small files, an empty file, a nested folder and a 64 MiB random file."""
    root = tmp_path / "upload"
    (root / "nested/deeper").mkdir(parents=True)
    (root / "readme.txt").write_text("a small text file\n")
    (root / "table.csv").write_text("year,value\n" + "".join(f"{y},{y * 1.5}\n" for y in range(2000, 2100)))
    (root / "empty.dat").write_bytes(b"")
    (root / "nested/deeper/notes.md").write_text("# notes\n" * 500)
    (root / "nested/big.bin").write_bytes(random.Random(17).randbytes(64 * MiB))
    return root


def test_a_folder_goes_up_byte_identical_comes_back_identical_and_a_second_upload_sends_almost_nothing(
    relay, live_server, alice, project, folder, tmp_path
):
    home = login(tmp_path / "home", relay, live_server, "alice", "alice-pass-123")
    up = copy(home, str(folder), "acc://demo/data/")
    assert up.returncode == 0 and "Upload completed successfully" in up.stdout, up.stdout + up.stderr
    first_upload = relay.up
    assert first_upload > 64 * MiB * 0.95, "the random file had to be sent"
    for relpath, digest in tree(folder).items():
        assert sha256(stored(project, f"data/{relpath}")) == digest, relpath
    listing = files.list_folder(project=project, relpath="data/nested")
    assert {e["name"] for e in listing["entries"]} == {"deeper", "big.bin"}, "an ordinary folder of the project"

    down = tmp_path / "down"
    got = copy(home, "acc://demo/data/", f"{down}/")
    assert got.returncode == 0 and "Download completed successfully" in got.stdout, got.stdout + got.stderr
    assert tree(down) == tree(folder)

    relay.reset()
    again = copy(home, str(folder), "acc://demo/data/")
    assert again.returncode == 0, again.stdout + again.stderr
    assert relay.up < 1 * MiB, f"a second upload of the same folder sent {relay.up} bytes"
    again_bytes = relay.up

    fresh = login(tmp_path / "other-machine", relay, live_server, "alice", "alice-pass-123")
    relay.reset()
    elsewhere = copy(fresh, str(folder), "acc://demo/copy/")
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr
    assert relay.up < 2 * MiB, f"from a machine without a cache, the same data sent {relay.up} bytes"
    assert sha256(stored(project, "copy/nested/big.bin")) == tree(folder)["nested/big.bin"]
    print(f"\nbytes sent: first upload {first_upload}, again {again_bytes}, from another machine {relay.up}")


def test_files_that_came_another_way_download_identically(
    relay, live_server, alice, project, api, start_worker, tmp_path
):
    body = random.Random(3).randbytes(3 * MiB + 123)
    assert (
        api(alice)
        .put("/api/v1/projects/demo/files/web/upload.bin", body, content_type="application/octet-stream")
        .status_code
        == 201
    )
    empty = api(alice).put("/api/v1/projects/demo/files/web/empty.txt", b"", content_type="application/octet-stream")
    assert empty.status_code == 201
    start_worker("local")
    job = api(alice).post(
        "/api/v1/aterm-cli/demo/jobs/dispatch/",
        {
            "is_holder_job": False,
            "name": "writer",
            "execute_cluster": "WKUBE",
            "job_args": [],
            "job_kwargs": {
                "docker_image": "acc-test/busybox:latest",
                "command": "mkdir -p out && head -c 2500000 /dev/urandom > out/random.bin && echo wrote",
                "conf": {"output_mappings": "/code/out/:acc://results/"},
            },
            "required_cores": 0.5,
            "required_ram": 268435456.0,
            "timeout": 60,
            "job_secrets": {},
            "children": [],
            "callback": None,
        },
        format="json",
    )
    assert job.status_code == 200, job.content
    done = wait_for_status(job.json()["job_id"], {"SUCCEEDED"}, timeout=90)
    assert done.status == "SUCCEEDED"

    home = login(tmp_path / "home", relay, live_server, "alice", "alice-pass-123")
    one = copy(home, "acc://demo/results/random.bin", str(tmp_path / "random.bin"))
    assert one.returncode == 0, one.stdout + one.stderr
    assert (tmp_path / "random.bin").read_bytes() == stored(project, "results/random.bin")
    web = copy(home, "acc://demo/web/", f"{tmp_path}/web/")
    assert web.returncode == 0, web.stdout + web.stderr
    assert (tmp_path / "web/upload.bin").read_bytes() == body
    assert (tmp_path / "web/empty.txt").read_bytes() == b""

    # the file changes: the next download has the new bytes, never the old ones
    changed = random.Random(4).randbytes(1 * MiB)
    assert (
        api(alice)
        .put("/api/v1/projects/demo/files/web/upload.bin", changed, content_type="application/octet-stream")
        .status_code
        == 201
    )
    again = copy(home, "acc://demo/web/upload.bin", str(tmp_path / "again.bin"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "again.bin").read_bytes() == changed


def test_an_outsider_learns_nothing_and_a_viewer_reads_but_cannot_write(
    relay, live_server, alice, charlie, project, folder, tmp_path, django_user_model
):
    dave = django_user_model.objects.create_user("dave", "dave@example.org", "dave-pass-123")
    Membership.objects.create(project=project, user=dave, role=Role.VIEWER)
    small = tmp_path / "small"
    small.mkdir()
    (small / "secret.csv").write_text("the project's data\n" * 1000)
    owner = login(tmp_path / "alice", relay, live_server, "alice", "alice-pass-123")
    assert copy(owner, str(small), "acc://demo/private/").returncode == 0

    outsider = login(tmp_path / "charlie", relay, live_server, "charlie", "charlie-pass-123")
    stolen = copy(outsider, "acc://demo/private/", f"{tmp_path}/stolen/")
    assert stolen.returncode == 1 and "not a member" in stolen.stdout + stolen.stderr
    assert not (tmp_path / "stolen/secret.csv").exists()
    # the same data uploaded by the outsider into his own project neither reveals nor reuses alice's xorbs
    mine = Project.objects.create(slug="charlies", name="Charlie's")
    Membership.objects.create(project=mine, user=charlie, role=Role.OWNER)
    relay.reset()
    own = copy(outsider, str(small), "acc://charlies/x/")
    assert own.returncode == 0, own.stdout + own.stderr
    assert relay.up > 1000, "no dedupe across projects: the outsider had to send the data himself"
    assert XorbAccess.objects.filter(project=mine).exists()

    viewer = login(tmp_path / "dave", relay, live_server, "dave", "dave-pass-123")
    read = copy(viewer, "acc://demo/private/", f"{tmp_path}/viewer/")
    assert read.returncode == 0, read.stdout + read.stderr
    assert (tmp_path / "viewer/secret.csv").read_text() == (small / "secret.csv").read_text()
    (small / "new.csv").write_text("a viewer's file\n")
    write = copy(viewer, str(small), "acc://demo/private/")
    assert write.returncode == 1 and "Upload failed" in write.stdout and "403" in write.stdout
    assert files.path_kind(project=project, relpath="private/new.csv") is None


def test_copy_both_ways_on_s3_storage(s3_storage, relay, live_server, alice, project, tmp_path):
    client, bucket = s3_storage
    root = tmp_path / "s3-upload"
    (root / "sub").mkdir(parents=True)
    (root / "sub/random.bin").write_bytes(random.Random(9).randbytes(9 * MiB))
    (root / "note.txt").write_text("on S3\n")
    (root / "empty").write_bytes(b"")
    home = login(tmp_path / "home", relay, live_server, "alice", "alice-pass-123")
    up = copy(home, str(root), "acc://demo/s3/")
    assert up.returncode == 0, up.stdout + up.stderr
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"projects/{project.pk}/s3/sub/random.bin" in keys, "the file is an ordinary object of the bucket"
    assert any(k.startswith("xet/xorbs/") for k in keys)
    for relpath, digest in tree(root).items():
        assert sha256(stored(project, f"s3/{relpath}")) == digest, relpath
    down = tmp_path / "s3-down"
    got = copy(home, "acc://demo/s3/", f"{down}/")
    assert got.returncode == 0, got.stdout + got.stderr
    assert tree(down) == tree(root)

"""Project files and the jobstore on S3 (a real S3-protocol server: moto_server), as with ACC_STORAGE=s3."""

import io

import pytest

from files import code, jobstore, services
from tests.files.helpers import put_folder, sha1

pytestmark = pytest.mark.django_db


def test_files_api_round_trip_on_s3(s3_storage, api, alice, project):
    client, bucket = s3_storage
    put = api(alice).put("/api/v1/projects/demo/files/data/run 1/table.csv", b"a,b\n1,2\n", content_type="text/csv")
    assert put.status_code == 201
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"projects/{project.pk}/data/run 1/table.csv"], "the object really is in the bucket"
    listing = api(alice).get("/api/v1/projects/demo/files/data/").json()
    assert [(e["name"], e["type"]) for e in listing["entries"]] == [("run 1", "folder")]
    download = api(alice).get("/api/v1/projects/demo/files/data/run 1/table.csv")
    assert b"".join(download.streaming_content) == b"a,b\n1,2\n"
    assert api(alice).delete("/api/v1/projects/demo/files/data/").status_code == 204
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_jobstore_and_mappings_on_s3(s3_storage, project, tmp_path):
    digest = put_folder(project, {"run.sh": (b"echo hi\n", 0o100755), "lib/x.txt": (b"x\n", 0o100644)})
    assert jobstore.exists(project=project, filename=f"manifest_{digest}.json")
    info = code.materialize(project=project, repo_url=f"s3accjobstore://manifest_{digest}.json", dest=tmp_path / "c")
    assert info["manifest"] == digest
    assert (tmp_path / "c/run.sh").stat().st_mode & 0o777 == 0o755
    bad = b"not what the name says"
    with pytest.raises(Exception, match="SHA-1"):
        jobstore.put(project=project, filename=f"cas_{sha1(b'other')}.blob", stream=io.BytesIO(bad))

    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub/r.txt").write_text("result\n")
    stored = services.store_from_local(project=project, src=out, relpath="results/")
    assert [s["path"] for s in stored] == ["results/sub/r.txt"]
    services.copy_to_local(project=project, relpath="results", dest=tmp_path / "back")
    assert (tmp_path / "back/sub/r.txt").read_text() == "result\n"

"""files.jobstore: content-addressed objects, manifest checks and signed upload tokens."""

import io

import pytest
from django.core import signing

from accelerator.errors import Forbidden, InvalidInput
from files import jobstore
from routines.models import Project
from tests.files.helpers import manifest_bytes, put_blob, sha1, zip_bytes

pytestmark = pytest.mark.django_db


def put(project, filename, data: bytes) -> bool:
    return jobstore.put(project=project, filename=filename, stream=io.BytesIO(data))


@pytest.mark.parametrize(
    "name", ["cas_abc.blob", "manifest_x.json", "CAS_" + "a" * 40 + ".blob", "../" + "a" * 40 + ".zip", ""]
)
def test_unknown_filenames_are_refused(project, name):
    with pytest.raises(InvalidInput) as err:
        jobstore.parse_filename(name)
    assert "cas_<40 hex SHA-1>.blob" in err.value.detail


def test_blob_is_stored_under_the_project_jobstore(project, storage_root):
    digest = sha1(b"print(1)\n")
    assert put(project, f"cas_{digest}.blob", b"print(1)\n") is True
    assert (storage_root / f"jobstore/{project.pk}/cas_{digest}.blob").read_bytes() == b"print(1)\n"
    assert jobstore.exists(project=project, filename=f"cas_{digest}.blob")


def test_second_put_of_the_same_object_reports_it_existed(project):
    put_blob(project, b"x")
    assert put(project, f"cas_{sha1(b'x')}.blob", b"x") is False


def test_wrong_sha1_is_rejected_and_nothing_is_stored(project, storage_root):
    claimed = sha1(b"something else")
    with pytest.raises(InvalidInput) as err:
        put(project, f"cas_{claimed}.blob", b"actual bytes")
    assert claimed in err.value.detail and sha1(b"actual bytes") in err.value.detail
    assert not jobstore.exists(project=project, filename=f"cas_{claimed}.blob")
    assert list(storage_root.rglob("cas_*")) == []


def test_manifest_with_present_blobs_is_accepted(project):
    raw = manifest_bytes([{"path": "main.py", "hash": put_blob(project, b"print(1)"), "mode": 0o100755}])
    assert put(project, f"manifest_{sha1(raw)}.json", raw) is True
    assert jobstore.load_manifest(project=project, sha1=sha1(raw))[0]["path"] == "main.py"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../evil.py", "'..'"),
        ("a/../../evil.py", "'..'"),
        ("/etc/cron.d/evil", "absolute"),
        ("a//b", "empty or '.' segment"),
        ("./a", "empty or '.' segment"),
        ("a\x00b", "NUL"),
    ],
)
def test_manifest_with_an_unsafe_path_is_rejected(project, path, message):
    raw = manifest_bytes([{"path": path, "hash": put_blob(project, b"x"), "mode": 0o100644}])
    with pytest.raises(InvalidInput) as err:
        put(project, f"manifest_{sha1(raw)}.json", raw)
    assert message in err.value.detail
    assert not jobstore.exists(project=project, filename=f"manifest_{sha1(raw)}.json")


def test_manifest_referencing_a_missing_blob_is_rejected_naming_it(project):
    missing = sha1(b"never uploaded")
    raw = manifest_bytes([{"path": "a.py", "hash": missing, "mode": 0o100644}])
    with pytest.raises(InvalidInput) as err:
        put(project, f"manifest_{sha1(raw)}.json", raw)
    assert f"cas_{missing}.blob" in err.value.detail
    assert not jobstore.exists(project=project, filename=f"manifest_{sha1(raw)}.json")


def test_blob_of_another_project_does_not_satisfy_a_manifest(project):
    other = Project.objects.create(slug="other", name="Other")
    raw = manifest_bytes([{"path": "a.py", "hash": put_blob(other, b"x"), "mode": 0o100644}])
    with pytest.raises(InvalidInput):
        put(project, f"manifest_{sha1(raw)}.json", raw)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b"not json", "not valid JSON"),
        (b'{"type": "zip", "files": []}', "cas_manifest"),
        (b'{"type": "cas_manifest", "files": [{"path": "a", "hash": "xyz", "mode": 1}]}', "40-character"),
        (b'{"type": "cas_manifest", "files": [{"path": "a", "hash": "' + b"a" * 40 + b'", "mode": "755"}]}', "mode"),
    ],
)
def test_malformed_manifests_are_rejected(project, manifest, message):
    with pytest.raises(InvalidInput) as err:
        put(project, f"manifest_{sha1(manifest)}.json", manifest)
    assert message in err.value.detail


def test_manifest_with_duplicate_or_clashing_paths_is_rejected(project):
    blob = put_blob(project, b"x")
    for files in (["a", "a"], ["a", "a/b"]):
        raw = manifest_bytes([{"path": p, "hash": blob, "mode": 0o100644} for p in files])
        with pytest.raises(InvalidInput):
            put(project, f"manifest_{sha1(raw)}.json", raw)


def test_zip_must_be_a_zip_archive(project):
    assert put(project, f"{sha1(zip_bytes({'a': b'a'}))}.zip", zip_bytes({"a": b"a"})) is True
    with pytest.raises(InvalidInput):
        put(project, f"{sha1(b'plain')}.zip", b"plain")


def test_upload_over_the_limit_is_refused(project):
    data = b"x" * 100
    with pytest.raises(InvalidInput):
        jobstore.put(project=project, filename=f"cas_{sha1(data)}.blob", stream=io.BytesIO(data), max_bytes=10)


def test_upload_token_round_trip(project):
    token = jobstore.make_upload_token(project=project, filename=f"cas_{'a' * 40}.blob")
    assert jobstore.check_upload_token(token) == (project, f"cas_{'a' * 40}.blob")


def test_expired_upload_token_is_refused(project, settings):
    token = jobstore.make_upload_token(project=project, filename=f"cas_{'a' * 40}.blob")
    settings.ACC_UPLOAD_URL_TTL = -1
    with pytest.raises(Forbidden) as err:
        jobstore.check_upload_token(token)
    assert "expired" in err.value.detail


def test_tampered_upload_token_is_refused(project):
    forged = signing.dumps({"p": project.pk, "f": f"cas_{'a' * 40}.blob"}, salt="another purpose")
    with pytest.raises(Forbidden) as err:
        jobstore.check_upload_token(forged)
    assert "signature" in err.value.detail

"""The accli upload flow: GET .../jobstore-push-url/?filename= then a credential-less PUT to the signed URL."""

import pytest

from files import jobstore
from tests.files.helpers import manifest_bytes, put_blob, sha1

pytestmark = pytest.mark.django_db


def push_url(client, filename, slug="demo"):
    return client.get(f"/api/v1/aterm-cli/{slug}/jobstore-push-url/", {"filename": filename})


def test_push_url_is_a_bare_json_string_then_409_after_upload(api, alice, api_anonymous_put, project):
    data = b"print('hello')\n"
    filename = f"cas_{sha1(data)}.blob"
    response = push_url(api(alice), filename)
    assert response.status_code == 200
    url = response.json()
    assert isinstance(url, str) and url.startswith("http://testserver/api/v1/jobstore/upload/")

    upload = api_anonymous_put(url, data)
    assert upload.status_code == 201, upload.content
    assert jobstore.exists(project=project, filename=filename)

    again = push_url(api(alice), filename)
    assert again.status_code == 409
    assert again.json()["detail"] == "already in the jobstore"


def test_member_may_push_but_stranger_gets_404(api, bob, charlie, project):
    filename = f"cas_{sha1(b'x')}.blob"
    assert push_url(api(bob), filename).status_code == 200
    assert push_url(api(charlie), filename).status_code == 404
    assert push_url(api(bob), filename, slug="no-such-project").status_code == 404


def test_bad_filename_is_400(api, alice, project):
    response = push_url(api(alice), "../../etc/passwd")
    assert response.status_code == 400
    assert "expected cas_<40 hex SHA-1>.blob" in response.json()["detail"]


def test_upload_with_wrong_sha1_is_400_and_stores_nothing(api, alice, api_anonymous_put, project):
    filename = f"cas_{sha1(b'claimed')}.blob"
    response = api_anonymous_put(push_url(api(alice), filename).json(), b"different bytes")
    assert response.status_code == 400
    assert "SHA-1 mismatch" in response.json()["detail"]
    assert not jobstore.exists(project=project, filename=filename)


def test_second_upload_of_the_same_object_is_200(api, alice, api_anonymous_put, project):
    url = push_url(api(alice), f"cas_{sha1(b'x')}.blob").json()
    assert api_anonymous_put(url, b"x").status_code == 201
    assert api_anonymous_put(url, b"x").status_code == 200


def test_manifest_with_dotdot_path_is_rejected_over_http(api, alice, api_anonymous_put, project):
    raw = manifest_bytes([{"path": "../../evil.sh", "hash": put_blob(project, b"x"), "mode": 0o100755}])
    response = api_anonymous_put(push_url(api(alice), f"manifest_{sha1(raw)}.json").json(), raw)
    assert response.status_code == 400
    assert "'..'" in response.json()["detail"]


def test_expired_upload_url_is_403(api, alice, api_anonymous_put, project, settings):
    url = push_url(api(alice), f"cas_{sha1(b'x')}.blob").json()
    settings.ACC_UPLOAD_URL_TTL = -1
    response = api_anonymous_put(url, b"x")
    assert response.status_code == 403
    assert "expired" in response.json()["detail"]


def test_forged_upload_url_is_403(api_anonymous_put, project):
    response = api_anonymous_put("/api/v1/jobstore/upload/not-a-token/", b"x")
    assert response.status_code == 403
    assert "signature" in response.json()["detail"]


def test_token_for_one_filename_cannot_store_another(api, alice, api_anonymous_put, project):
    url = push_url(api(alice), f"cas_{sha1(b'x')}.blob").json()
    assert api_anonymous_put(url, b"y").status_code == 400
    assert not jobstore.exists(project=project, filename=f"cas_{sha1(b'y')}.blob")


def test_empty_file_uploads(api, alice, api_anonymous_put, project):
    url = push_url(api(alice), f"cas_{sha1(b'')}.blob").json()
    assert api_anonymous_put(url, b"").status_code == 201


def test_uploaded_blobs_are_readable(api, alice, api_anonymous_put, project):
    url = push_url(api(alice), f"cas_{sha1(b'abc')}.blob").json()
    api_anonymous_put(url, b"abc")
    with jobstore.open_object(project=project, filename=f"cas_{sha1(b'abc')}.blob") as fh:
        assert fh.read() == b"abc"

"""/api/v1/projects/<slug>/files/<path>: list, download, upload and delete project files."""

import pytest

from routines.models import Membership, Role

pytestmark = pytest.mark.django_db

URL = "/api/v1/projects/demo/files/"


def body(response) -> bytes:
    """Read a streamed download; the test client closes it when the iterator ends."""
    return b"".join(response.streaming_content)


def test_owner_round_trip_upload_list_download_delete(api, alice, project):
    client = api(alice)
    put = client.put(URL + "data/x.csv", b"a,b\n1,2\n", content_type="text/csv")
    assert put.status_code == 201, put.content
    assert put.json()["path"] == "data/x.csv" and put.json()["size"] == 8

    root = client.get(URL)
    assert root.status_code == 200
    assert root.json() == {
        "path": "",
        "entries": [{"name": "data", "path": "data", "type": "folder", "size": None, "modified": None}],
    }
    [entry] = client.get(URL + "data/").json()["entries"]
    assert (entry["name"], entry["type"], entry["size"]) == ("x.csv", "file", 8)

    download = client.get(URL + "data/x.csv")
    assert download.status_code == 200
    assert 'attachment; filename="x.csv"' in download["Content-Disposition"]
    assert body(download) == b"a,b\n1,2\n"

    assert client.delete(URL + "data").status_code == 204
    assert client.get(URL + "data/x.csv").status_code == 404


def test_member_can_upload_and_download(api, bob, project):
    client = api(bob)
    assert client.put(URL + "b.bin", b"\x00\x01", content_type="application/octet-stream").status_code == 201
    assert body(client.get(URL + "b.bin")) == b"\x00\x01"


def test_stranger_gets_404_for_every_method(api, alice, charlie, project):
    api(alice).put(URL + "x", b"x", content_type="application/octet-stream")
    client = api(charlie)
    for response in (
        client.get(URL),
        client.get(URL + "x"),
        client.put(URL + "x", b"y", content_type="text/plain"),
        client.delete(URL + "x"),
    ):
        assert response.status_code == 404
        assert "not a member" in response.json()["detail"]


def test_viewer_can_read_but_not_write(api, alice, charlie, project):
    Membership.objects.create(project=project, user=charlie, role=Role.VIEWER)
    api(alice).put(URL + "x", b"x", content_type="application/octet-stream")
    client = api(charlie)
    assert client.get(URL + "x").status_code == 200
    assert client.put(URL + "y", b"y", content_type="application/octet-stream").status_code == 403
    assert client.delete(URL + "x").status_code == 403


def test_anonymous_is_refused(api, project):
    assert api(None).get(URL).status_code == 401


def test_body_is_stored_raw_whatever_the_content_type(api, alice, project):
    client = api(alice)
    assert client.put(URL + "not.json", b"{broken", content_type="application/json").status_code == 201
    assert client.put(URL + "form", b"a=1&b=2", content_type="application/x-www-form-urlencoded").status_code == 201
    assert body(client.get(URL + "not.json")) == b"{broken"
    assert body(client.get(URL + "form")) == b"a=1&b=2"


@pytest.mark.parametrize("path", ["../escape", "%2e%2e/escape", "a/../../escape", "a%5cb"])
def test_path_escaping_the_project_is_400_with_a_clear_detail(api, alice, project, path):
    response = api(alice).put(URL + path, b"x", content_type="application/octet-stream")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_missing_path_is_404(api, alice, project):
    response = api(alice).get(URL + "nope.txt")
    assert response.status_code == 404
    assert "nope.txt" in response.json()["detail"]


def test_upload_over_the_limit_is_refused(api, alice, project, settings):
    settings.ACC_MAX_UPLOAD_BYTES = 4
    response = api(alice).put(URL + "big", b"12345", content_type="application/octet-stream")
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert api(alice).get(URL + "big").status_code == 404


def test_writing_below_a_file_is_409(api, alice, project):
    client = api(alice)
    client.put(URL + "a", b"x", content_type="application/octet-stream")
    response = client.put(URL + "a/b", b"x", content_type="application/octet-stream")
    assert response.status_code == 409


def test_download_ignores_a_specific_accept_header(api, alice, project):
    client = api(alice)
    client.put(URL + "x.bin", b"x", content_type="application/octet-stream")
    response = client.get(URL + "x.bin", HTTP_ACCEPT="application/octet-stream")
    assert response.status_code == 200 and body(response) == b"x"


def test_putting_the_root_is_400(api, alice, project):
    assert api(alice).put(URL, b"x", content_type="application/octet-stream").status_code == 400

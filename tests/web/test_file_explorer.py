"""The file explorer page: browse, new folder, rename, move, delete, and launching a routine on a selection."""

import io
import json

import pytest

from accelerator.errors import InvalidInput
from files import services as files
from jobs.models import Job
from tests.web.conftest import make_routine
from workers import dispatch

pytestmark = pytest.mark.django_db


def write(project, relpath, data=b"x"):
    files.write_file(project=project, relpath=relpath, stream=io.BytesIO(data))


def names(project, relpath=""):
    return [e["name"] for e in files.list_folder(project=project, relpath=relpath)["entries"]]


def test_the_explorer_lists_a_folder_with_breadcrumbs(signed_in, project, alice):
    write(project, "data/a.csv", b"1,2\n")
    write(project, "data/sub/b.txt")
    response = signed_in(alice).get("/projects/demo/files/data")
    text = response.content.decode()
    assert response.status_code == 200
    assert 'href="/projects/demo/files/data/sub"' in text and "/api/v1/projects/demo/files/data/a.csv" in text
    assert 'id="up-link"' in text


def test_a_file_path_downloads_through_the_api(signed_in, project, alice):
    write(project, "x.txt", b"hello")
    response = signed_in(alice).get("/projects/demo/files/x.txt")
    assert response.status_code == 302 and response["Location"] == "/api/v1/projects/demo/files/x.txt"


def test_new_folder_rename_move_and_delete(signed_in, project, alice):
    client = signed_in(alice)
    write(project, "a.txt", b"A")
    write(project, "d/b.txt", b"B")
    assert client.post("/projects/demo/files/", {"action": "mkdir", "name": "archive"}).status_code == 302
    assert files.path_kind(project=project, relpath="archive") == "folder"
    client.post("/projects/demo/files/", {"action": "rename", "path": "a.txt", "new_name": "first.txt"})
    assert names(project) == ["archive", "d", "first.txt"]
    client.post("/projects/demo/files/", {"action": "move", "paths": ["first.txt", "d"], "destination": "archive"})
    assert names(project) == ["archive"] and names(project, "archive") == ["d", "first.txt"]
    with files.open_file(project=project, relpath="archive/d/b.txt") as fh:
        assert fh.read() == b"B"
    client.post("/projects/demo/files/archive", {"action": "delete", "paths": ["archive/d"]})
    assert names(project, "archive") == ["first.txt"]


def test_form_errors_show_next_to_their_field(signed_in, project, alice):
    client = signed_in(alice)
    write(project, "a.txt")
    write(project, "b.txt")
    bad_name = client.post("/projects/demo/files/", {"action": "mkdir", "name": "x/y"})
    assert bad_name.status_code == 400 and "cannot contain &#x27;/&#x27;" in bad_name.content.decode()
    taken = client.post("/projects/demo/files/", {"action": "rename", "path": "a.txt", "new_name": "b.txt"})
    assert taken.status_code == 400 and "already exists" in taken.content.decode()
    assert 'id="rename-dialog" open' in taken.content.decode()
    nothing = client.post("/projects/demo/files/", {"action": "delete"})
    assert nothing.status_code == 400 and "Select at least one" in nothing.content.decode()
    nowhere = client.post("/projects/demo/files/", {"action": "move", "paths": ["a.txt"], "destination": "nope"})
    assert nowhere.status_code == 400 and "not an existing folder" in nowhere.content.decode()
    assert names(project) == ["a.txt", "b.txt"]


def test_a_folder_cannot_move_into_itself(project):
    write(project, "d/x")
    files.make_folder(project=project, relpath="d/inner")
    with pytest.raises(InvalidInput, match="into itself"):
        files.move_paths(project=project, relpaths=["d"], folder="d/inner")


def test_a_viewer_may_browse_but_not_change(signed_in, project, django_user_model):
    from routines.models import Membership, Role

    viewer = django_user_model.objects.create_user("vera", password="x")
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)
    write(project, "a.txt")
    client = signed_in(viewer)
    assert client.get("/projects/demo/files/").status_code == 200
    assert client.post("/projects/demo/files/", {"action": "delete", "paths": ["a.txt"]}).status_code == 403
    assert names(project) == ["a.txt"]


def test_charlie_cannot_see_the_files(signed_in, project, charlie):
    assert signed_in(charlie).get("/projects/demo/files/").status_code == 404


def test_launch_opens_the_routine_form_with_the_selection(signed_in, project, alice):
    routine = make_routine(project, alice, schema=None)
    write(project, "data/a.csv")
    response = signed_in(alice).post(
        "/projects/demo/files/data",
        {"action": "launch", "paths": ["data/a.csv", "data/b c.csv"], "routine": routine.pk},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/routines/{routine.pk}/?selected=data%2Fa.csv&selected=data%2Fb+c.csv"
    page = signed_in(alice).get(response["Location"]).content.decode()
    assert 'name="selected" value="data/a.csv"' in page


def test_the_run_form_hands_the_selection_to_the_job(signed_in, project, alice):
    routine = make_routine(project, alice, schema=None, conf={"input_mappings": "acc://demo/base/:/code/base/"})
    write(project, "base/x")
    write(project, "data/a.csv")
    write(project, "data/b.csv")
    write(project, "more/c.txt")
    value = {"conf": [], "secrets": []}
    response = signed_in(alice).post(
        f"/routines/{routine.pk}/",
        {"conf_json": json.dumps(value), "selected": ["data/a.csv", "more", "data/b.csv"]},
    )
    assert response.status_code == 302
    job = Job.objects.get()
    assert json.loads(job.conf["selected_files"]) == ["inputs/data/a.csv", "inputs/data/b.csv"]
    assert json.loads(job.conf["selected_folders"]) == ["inputs/more/"]
    assert job.conf["input_mappings"] == (
        "acc://demo/base/:/code/base/;acc://demo/data/a.csv:/code/inputs/data/a.csv;"
        "acc://demo/more/:/code/inputs/more/;acc://demo/data/b.csv:/code/inputs/data/b.csv"
    )


def test_a_missing_selection_is_reported_next_to_it(signed_in, project, alice):
    routine = make_routine(project, alice, schema=None)
    response = signed_in(alice).post(
        f"/routines/{routine.pk}/", {"conf_json": json.dumps({"conf": [], "secrets": []}), "selected": ["gone.txt"]}
    )
    assert response.status_code == 400 and "gone.txt" in response.content.decode()
    assert not Job.objects.exists()


def test_selection_conf_refuses_the_root_and_names_that_break_mappings(project, alice):
    routine = make_routine(project, alice, schema=None)
    write(project, "a:b")
    for bad, why in (("", "root cannot be selected"), ("a:b", "without ':'")):
        with pytest.raises(InvalidInput, match=why):
            dispatch.selection_conf(project=project, version=routine.latest_version, paths=[bad])

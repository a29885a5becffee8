"""Authoring pages: new project, members, the routine editor, versions, sharing (alice owns, bob member,
charlie stranger); bad input shows at its field with 400 and saves nothing."""

import json

import pytest

from routines import services
from routines.models import BaseStack, Membership, Project, Role, Routine
from tests.web.conftest import make_routine

pytestmark = pytest.mark.django_db

IMAGE_FORM = {
    "name": "count",
    "description": "Counts *up*.",
    "stack_kind": "docker_image",
    "docker_image": "acc-test/busybox:latest",
    "docker_filename": "Dockerfile",
    "code_kind": "none",
    "command": 'echo "$N"',
    "cores": "0.5",
    "memory": "256",
    "memory_unit": "MiB",
    "storage": "1",
    "storage_unit": "GiB",
    "timeout": "2",
    "timeout_unit": "hours",
    "conf_key": ["N", "GREETING"],
    "conf_value": ["3", "hi"],
    "conf_schema": json.dumps({"type": "object", "properties": {"N": {"type": "integer"}}, "required": ["N"]}),
    "interactive_socket": "",
    "deterministic": "on",
    "input_mappings": "",
    "output_mappings": "/code/out/:acc://demo/out/",
    "build_timeout": "",
}


def test_create_a_project_makes_its_creator_owner(signed_in, charlie):
    response = signed_in(charlie).post("/projects/new/", {"slug": "lab", "name": "Lab", "description": "x"})
    assert response.status_code == 302 and response["Location"] == "/projects/lab/"
    assert Membership.objects.get(project__slug="lab", user=charlie).role == Role.OWNER


@pytest.mark.parametrize(
    "slug, message",
    [("Bad Slug", "is not valid"), ("demo", "already exists"), ("", "This field is required"), ("new", "reserved")],
)
def test_a_bad_or_taken_slug_is_shown_at_the_field(signed_in, charlie, project, slug, message):
    response = signed_in(charlie).post("/projects/new/", {"slug": slug, "name": "X"})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Project.objects.count() == 1


def test_owner_adds_a_viewer_who_sees_the_project_without_new_routine(signed_in, alice, charlie, project, client):
    response = signed_in(alice).post(
        "/projects/demo/members/", {"action": "add", "username": "charlie", "role": "viewer"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=charlie).role == Role.VIEWER
    page = signed_in(charlie).get("/projects/demo/")
    assert page.status_code == 200
    assert "New routine" not in page.content.decode()
    assert signed_in(charlie).get("/projects/demo/routines/new/").status_code == 403
    members = signed_in(charlie).get("/projects/demo/members/").content.decode()
    assert "Add a member" not in members and "Remove" not in members
    assert (
        signed_in(charlie).post("/projects/demo/members/", {"action": "remove", "username": "bob"}).status_code == 403
    )
    assert Membership.objects.filter(project=project, user__username="bob").exists()


def test_the_last_owner_cannot_be_demoted_and_the_page_says_why(signed_in, alice, project):
    response = signed_in(alice).post(
        "/projects/demo/members/", {"action": "role", "username": "alice", "role": "member"}
    )
    assert response.status_code == 400
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.get(project=project, user=alice).role == Role.OWNER


def test_unknown_user_is_shown_at_the_username(signed_in, alice, project):
    response = signed_in(alice).post(
        "/projects/demo/members/", {"action": "add", "username": "nobody", "role": "member"}
    )
    assert response.status_code == 400 and "No active user named" in response.content.decode()


def test_strangers_get_404_on_every_authoring_page(signed_in, alice, charlie, project):
    routine = make_routine(project, alice)
    client = signed_in(charlie)
    for url in [
        "/projects/demo/members/",
        "/projects/demo/routines/new/",
        f"/routines/{routine.pk}/edit/",
        f"/routines/{routine.pk}/versions/",
        f"/routines/{routine.pk}/versions/1/",
        f"/routines/{routine.pk}/sharing/",
        f"/routines/{routine.pk}/copy/",
    ]:
        assert client.get(url).status_code == 404, url


def test_the_editor_saves_the_task_accli_would_send(signed_in, bob, project):
    response = signed_in(bob).post("/projects/demo/routines/new/", IMAGE_FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    routine = Routine.objects.get(project=project, name="count")
    spec = routine.latest_version.spec
    assert spec["stack"] == {"kind": "docker_image", "image": "acc-test/busybox:latest"}
    assert spec["code"] == {"kind": "none"}
    assert spec["resources"] == {
        "required_cores": 0.5,
        "required_ram": 256 * 2**20,
        "required_storage_local": 2**30,
        "timeout": 7200,
    }
    assert spec["conf"] == {"N": "3", "GREETING": "hi", "output_mappings": "/code/out/:acc://demo/out/"}
    assert spec["conf_schema"]["required"] == ["N"]
    assert routine.description == "Counts *up*."


def test_the_edit_form_shows_the_saved_values_and_an_unchanged_save_records_nothing(signed_in, bob, project):
    client = signed_in(bob)
    client.post("/projects/demo/routines/new/", IMAGE_FORM)
    routine = Routine.objects.get(name="count")
    page = client.get(f"/routines/{routine.pk}/edit/").content.decode()
    assert 'value="256"' in page and 'value="2"' in page and "hours" in page
    again = client.post(f"/routines/{routine.pk}/edit/", IMAGE_FORM)
    assert again["Location"].endswith("?saved=same")
    assert routine.versions.count() == 1
    changed = client.post(f"/routines/{routine.pk}/edit/", {**IMAGE_FORM, "command": "echo changed"})
    assert changed["Location"].endswith("?saved=new")
    assert routine.versions.count() == 2
    diff = client.get(f"/routines/{routine.pk}/versions/?a=1&b=2").content.decode()
    assert "echo changed" in diff and 'data-field="command"' in diff


@pytest.mark.parametrize(
    "change, field_id, message",
    [
        ({"name": ""}, "name", "Give the routine a name"),
        ({"command": ""}, "command", "command is required"),
        ({"docker_image": "not an image!"}, "docker_image", "not a valid image reference"),
        ({"memory": "lots"}, "memory", "Memory must be a number"),
        ({"cores": "100000"}, "cores", "required_cores must be at most"),
        ({"conf_schema": '{"type": "object",\n "properties": }'}, "conf_schema", "Line 2"),
        ({"conf_schema": '{"type": "nonsense"}'}, "conf_schema", "not a valid JSON Schema"),
        ({"interactive_socket": "nowhere"}, "interactive_socket", "has no port"),
        ({"output_mappings": "/code/out"}, "output_mappings", "Output mapping"),
        ({"conf_key": ["bad name"], "conf_value": ["x"]}, "conf", "not a valid environment variable name"),
        ({"stack_kind": "docker_filename", "code_kind": "none"}, "code_kind", "needs code"),
        ({"code_kind": "git", "git_url": "ext::sh -c evil", "git_ref": "main"}, "git_url", "remote helper"),
        (
            {
                "stack_kind": "base_stack",
                "base_stack": "NOPE",
                "code_kind": "git",
                "git_url": "https://example.org/r.git",
                "git_ref": "main",
            },
            "base_stack",
            "Unknown base_stack",
        ),
    ],
)
def test_bad_input_shows_at_its_field_and_saves_nothing(signed_in, bob, project, change, field_id, message):
    BaseStack.objects.create(name="PY", image="python:3.12-slim", description="Python")
    response = signed_in(bob).post("/projects/demo/routines/new/", {**IMAGE_FORM, **change})
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page, page[:3000]
    assert field_of_message(page, message) == field_id, "the message shows next to its field"
    assert not Routine.objects.filter(project=project).exists()


def field_of_message(page: str, message: str) -> str:
    """The field (data-for) of the error paragraph holding `message`."""
    import re

    for found in re.finditer(r'data-for="([a-z_]+)">([^<]*)<', page):
        if message in found.group(2):
            return found.group(1)
    return ""


def test_viewers_cannot_edit_and_the_edit_button_is_only_for_members(signed_in, alice, charlie, project):
    routine = make_routine(project, alice)
    Membership.objects.create(project=project, user=charlie, role=Role.VIEWER)
    client = signed_in(charlie)
    assert client.get(f"/routines/{routine.pk}/edit/").status_code == 403
    assert client.post(f"/routines/{routine.pk}/edit/", IMAGE_FORM).status_code == 403
    assert f"/routines/{routine.pk}/edit/" not in client.get(f"/routines/{routine.pk}/").content.decode()
    assert routine.versions.count() == 1


def test_a_shared_routine_is_read_and_copied_by_the_grantee(signed_in, alice, charlie, project):
    routine = make_routine(project, alice)
    lab = Project.objects.create(slug="lab", name="Lab")
    Membership.objects.create(project=lab, user=charlie, role=Role.OWNER)
    assert signed_in(charlie).get(f"/routines/{routine.pk}/").status_code == 404
    shared = signed_in(alice).post(f"/routines/{routine.pk}/sharing/", {"action": "share", "username": "charlie"})
    assert shared.status_code == 302
    client = signed_in(charlie)
    assert "greet" in client.get("/shared/").content.decode()
    page = client.get(f"/routines/{routine.pk}/").content.decode()
    assert "copy it into a project of yours" in page
    assert client.post(f"/routines/{routine.pk}/sharing/", {"username": "bob"}).status_code == 403
    copied = client.post(f"/routines/{routine.pk}/copy/", {"project": "lab", "name": "greet"})
    assert copied.status_code == 302
    copy = Routine.objects.get(project=lab, name="greet")
    assert copy.latest_version.spec == routine.latest_version.spec
    taken = client.post(f"/routines/{routine.pk}/copy/", {"project": "lab", "name": "greet"})
    assert taken.status_code == 400 and "already exists" in taken.content.decode()
    signed_in(alice).post(f"/routines/{routine.pk}/sharing/", {"action": "unshare", "username": "charlie"})
    assert signed_in(charlie).get(f"/routines/{routine.pk}/").status_code == 404


def test_sharing_with_an_unknown_user_is_shown_at_the_field(signed_in, alice, project):
    routine = make_routine(project, alice)
    response = signed_in(alice).post(f"/routines/{routine.pk}/sharing/", {"action": "share", "username": "nobody"})
    assert response.status_code == 400 and "No active user named" in response.content.decode()


def test_the_jobstore_missing_endpoint_lists_what_is_not_stored(api, bob, charlie, project):
    from io import BytesIO

    from files import jobstore

    data = b"hello"
    import hashlib

    sha = hashlib.sha1(data).hexdigest()
    jobstore.put(project=project, filename=f"cas_{sha}.blob", stream=BytesIO(data))
    other = "a" * 40
    body = {"filenames": [f"cas_{sha}.blob", f"cas_{other}.blob"]}
    response = api(bob).post("/api/v1/projects/demo/jobstore/missing/", body, format="json")
    assert response.status_code == 200 and response.json() == {"missing": [f"cas_{other}.blob"]}
    assert api(charlie).post("/api/v1/projects/demo/jobstore/missing/", body, format="json").status_code == 404
    bad = api(bob).post("/api/v1/projects/demo/jobstore/missing/", {"filenames": ["../x"]}, format="json")
    assert bad.status_code == 400


def test_a_routine_shared_with_a_project_is_read_by_its_members_now_and_later(signed_in, alice, charlie, project):
    from django.contrib.auth import get_user_model

    routine = make_routine(project, alice)
    lab = Project.objects.create(slug="lab", name="Lab")
    Membership.objects.create(project=lab, user=charlie, role=Role.VIEWER)
    shared = signed_in(alice).post(f"/routines/{routine.pk}/sharing/", {"action": "share_project", "slug": "lab"})
    assert shared.status_code == 302
    assert "project lab" in signed_in(alice).get(f"/routines/{routine.pk}/").content.decode()
    assert signed_in(charlie).get(f"/routines/{routine.pk}/").status_code == 200
    assert "greet" in signed_in(charlie).get("/projects/lab/").content.decode()
    dave = get_user_model().objects.create_user("dave", "d@example.org", "dave-pass-123")
    assert signed_in(dave).get(f"/routines/{routine.pk}/").status_code == 404
    Membership.objects.create(project=lab, user=dave, role=Role.MEMBER)
    assert signed_in(dave).get(f"/routines/{routine.pk}/").status_code == 200, "a later member reads it too"
    signed_in(alice).post(f"/routines/{routine.pk}/sharing/", {"action": "unshare_project", "slug": "lab"})
    assert signed_in(dave).get(f"/routines/{routine.pk}/").status_code == 404


def test_sharing_with_an_unknown_project_is_shown_at_the_field(signed_in, alice, project):
    routine = make_routine(project, alice)
    response = signed_in(alice).post(f"/routines/{routine.pk}/sharing/", {"action": "share_project", "slug": "nope"})
    assert response.status_code == 400
    assert field_of_message(response.content.decode(), "No project with slug") == "slug"


def test_the_job_page_links_the_version_it_ran_even_after_an_edit(signed_in, alice, project):
    from workers import dispatch

    routine = make_routine(project, alice, command="echo one")
    job = dispatch.run_routine(routine=routine, user=alice)
    task = {"name": "greet", "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": "echo two"}}
    services.save_routine(project=project, user=alice, task=task, routine=routine)  # version 2
    page = signed_in(alice).get(f"/jobs/{job.pk}/").content.decode()
    assert f'href="/routines/{routine.pk}/versions/1/" id="version-link">v1<' in page
    version = signed_in(alice).get(f"/routines/{routine.pk}/versions/1/").content.decode()
    assert "echo one" in version and "echo two" not in version.split('id="versions"')[0]


def test_a_copy_takes_its_uploaded_code_along_and_the_diff_lists_changed_files(signed_in, alice, charlie, project):
    from files import jobstore
    from tests.files.helpers import put_folder

    one = put_folder(project, {"Dockerfile": (b"FROM busybox\n", 0o100644), "main.py": (b"print(1)\n", 0o100644)})
    two = put_folder(project, {"Dockerfile": (b"FROM busybox\n", 0o100644), "run.py": (b"print(2)\n", 0o100644)})
    form = {**IMAGE_FORM, "stack_kind": "docker_filename", "code_kind": "upload", "output_mappings": ""}
    client = signed_in(alice)
    client.post("/projects/demo/routines/new/", {**form, "repo_url": f"s3accjobstore://manifest_{one}.json"})
    routine = Routine.objects.get(name="count")
    client.post(f"/routines/{routine.pk}/edit/", {**form, "repo_url": f"s3accjobstore://manifest_{two}.json"})
    diff = client.get(f"/routines/{routine.pk}/versions/2/").content.decode()
    assert "+ run.py (added)" in diff and "- main.py (removed)" in diff and "Dockerfile (" not in diff

    lab = Project.objects.create(slug="lab", name="Lab")
    Membership.objects.create(project=lab, user=charlie, role=Role.MEMBER)
    client.post(f"/routines/{routine.pk}/sharing/", {"action": "share", "username": "charlie"})
    copied = signed_in(charlie).post(f"/routines/{routine.pk}/copy/", {"project": "lab", "name": "mine"})
    assert copied.status_code == 302
    assert jobstore.exists(project=lab, filename=f"manifest_{two}.json")
    assert Routine.objects.get(project=lab, name="mine").latest_version.spec["code"]["url"].endswith(f"{two}.json")

"""The builder and saved jobflow pages: who may do what, and bad input answered at the field, saving nothing."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobflows import saved
from jobflows.models import Jobflow, JobflowRun
from routines.models import Membership, Role
from tests.jobflows.test_saved import diamond, make_routine


@pytest.fixture
def routines(project, alice):
    return make_routine(project, alice, "echo", "echo hi"), make_routine(project, alice, "count", "echo $N")


@pytest.fixture
def flow(project, alice, routines):
    return saved.save_jobflow(project=project, user=alice, name="diamond", definition=diamond(*routines))[0]


@pytest.fixture
def carol(project, django_user_model):
    user = django_user_model.objects.create_user("carol", "carol@example.org", "carol-pass-123")
    Membership.objects.create(project=project, user=user, role=Role.VIEWER)
    return user


def test_builder_lists_the_routines_and_saves_a_new_jobflow(client, alice, routines):
    client.force_login(alice)
    page = client.get("/projects/demo/jobflows/new/")
    assert page.status_code == 200
    config = page.context["config"]
    assert {r["name"] for r in config["routines"]} == {"echo", "count"}
    answer = client.post(
        "/projects/demo/jobflows/new/", {"name": "diamond", "definition": json.dumps(diamond(*routines))}
    )
    flow = Jobflow.objects.get(name="diamond")
    assert answer.status_code == 302 and answer["Location"] == f"/jobflows/{flow.pk}/"
    page = client.get(f"/jobflows/{flow.pk}/").content.decode()
    assert "Export wkube.py" in page and ">count</a> v1" in page


def test_a_bad_definition_comes_back_at_its_node_and_saves_nothing(client, alice, routines):
    client.force_login(alice)
    bad = diamond(*routines)
    bad["edges"].append(["d", "a"])
    answer = client.post("/projects/demo/jobflows/new/", {"name": "loop", "definition": json.dumps(bad)})
    assert answer.status_code == 400
    assert answer.context["config"]["error"]["node"] == "a"
    assert "cycle" in answer.content.decode()
    answer = client.post("/projects/demo/jobflows/new/", {"name": "", "definition": json.dumps(diamond(*routines))})
    assert answer.status_code == 400 and 'id="name-error"' in answer.content.decode()
    assert not Jobflow.objects.exists()


def test_viewer_sees_the_jobflow_but_cannot_build_or_run(client, carol, flow):
    client.force_login(carol)
    assert client.get(f"/jobflows/{flow.pk}/").status_code == 200
    assert "run-jobflow" not in client.get(f"/jobflows/{flow.pk}/").content.decode()
    assert client.get("/projects/demo/jobflows/new/").status_code == 403
    assert client.get(f"/jobflows/{flow.pk}/edit/").status_code == 403
    assert client.post(f"/jobflows/{flow.pk}/run/").status_code == 403
    assert not JobflowRun.objects.exists()


def test_stranger_gets_404_everywhere(client, charlie, flow):
    client.force_login(charlie)
    for url in (f"/jobflows/{flow.pk}/", f"/jobflows/{flow.pk}/edit/", f"/jobflows/{flow.pk}/export/?format=json"):
        assert client.get(url).status_code == 404
    assert client.post(f"/jobflows/{flow.pk}/run/").status_code == 404
    assert client.get("/projects/demo/jobflows/new/").status_code == 404


def test_export_then_import_and_a_hostile_file_is_refused(client, alice, flow, tmp_path):
    client.force_login(alice)
    exported = client.get(f"/jobflows/{flow.pk}/export/?format=wkube")
    assert exported["Content-Disposition"] == 'attachment; filename="wkube.py"'
    again = client.post(f"/jobflows/{flow.pk}/import/", {"file": SimpleUploadedFile("wkube.py", exported.content)})
    assert again.status_code == 302 and flow.versions.count() == 1, "the same definition: no new version"
    marker = tmp_path / "ran"
    hostile = f"import os\nos.system('touch {marker}')\n".encode()
    answer = client.post(f"/jobflows/{flow.pk}/import/", {"file": SimpleUploadedFile("wkube.py", hostile)})
    assert answer.status_code == 400 and "wkube.py line 1" in answer.content.decode()
    assert not marker.exists()
    answer = client.post(
        "/projects/demo/jobflows/import/", {"name": "copy", "file": SimpleUploadedFile("wkube.py", exported.content)}
    )
    copy = Jobflow.objects.get(name="copy")
    assert answer.status_code == 302 and copy.latest_version.definition == flow.latest_version.definition

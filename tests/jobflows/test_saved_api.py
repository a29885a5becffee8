"""The saved jobflow API with alice (owner), bob (member), carol (viewer) and charlie (stranger)."""

import pytest

from jobflows import wkube
from jobflows.models import Jobflow, JobflowRun
from routines.models import Membership, Role
from tests.jobflows.test_saved import diamond, make_routine

URL = "/api/v1/projects/demo/jobflows/"


@pytest.fixture
def routines(project, alice):
    return make_routine(project, alice, "echo", "echo hi"), make_routine(project, alice, "count", "echo $N")


@pytest.fixture
def carol(project, django_user_model):
    user = django_user_model.objects.create_user("carol", "carol@example.org", "carol-pass-123")
    Membership.objects.create(project=project, user=user, role=Role.VIEWER)
    return user


def test_create_read_edit_and_list(api, alice, bob, routines):
    made = api(bob).post(URL, {"name": "diamond", "definition": diamond(*routines)}, format="json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["version"] == 1 and body["project"] == "demo" and body["created_by"] == "bob"
    assert [n["id"] for n in body["definition"]["nodes"]] == ["a", "b", "c", "d"]
    url = f"/api/v1/jobflows/{body['id']}/"
    same = api(alice).put(url, {"name": "diamond", "definition": diamond(*routines)}, format="json").json()
    assert same["version"] == 1, "an unchanged definition records nothing"
    changed = api(alice).put(url, {"name": "diamond", "definition": diamond(*routines, N="9")}, format="json")
    assert changed.json()["version"] == 2
    assert [v["number"] for v in api(alice).get(f"{url}versions/").json()] == [2, 1]
    assert [f["name"] for f in api(alice).get(URL).json()] == ["diamond"]


def test_bad_definition_is_a_400_naming_the_node_and_saves_nothing(api, alice, routines):
    bad = diamond(*routines)
    bad["edges"].append(["d", "a"])
    answer = api(alice).post(URL, {"name": "loop", "definition": bad}, format="json")
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("Node a: this node is part of a cycle")
    nul = diamond(*routines, N="\x00")
    assert api(alice).post(URL, {"name": "nul", "definition": nul}, format="json").status_code == 400
    huge = diamond(*routines)
    huge["nodes"][0]["routine"] = 2**70
    assert api(alice).post(URL, {"name": "huge", "definition": huge}, format="json").status_code == 400
    assert not Jobflow.objects.exists()


def test_viewer_reads_but_cannot_save_or_run_and_a_stranger_gets_404(api, alice, carol, charlie, routines):
    flow = api(alice).post(URL, {"name": "diamond", "definition": diamond(*routines)}, format="json").json()
    url = f"/api/v1/jobflows/{flow['id']}/"
    assert api(carol).get(url).status_code == 200
    assert api(carol).post(URL, {"name": "x", "definition": diamond(*routines)}, format="json").status_code == 403
    assert api(carol).post(f"{url}run/").status_code == 403
    for path in ("", "versions/", "export/?as=json"):
        assert api(charlie).get(f"{url}{path}").status_code == 404
    assert api(charlie).post(f"{url}run/").status_code == 404
    assert api(charlie).get(URL).status_code == 404
    assert not JobflowRun.objects.exists()


def test_run_and_export(api, alice, routines):
    flow = api(alice).post(URL, {"name": "diamond", "definition": diamond(*routines)}, format="json").json()
    url = f"/api/v1/jobflows/{flow['id']}/"
    ran = api(alice).post(f"{url}run/")
    assert ran.status_code == 201 and ran.json()["version"] == 1
    root = api(alice).get(f"/api/v1/jobs/{ran.json()['job_id']}/").json()
    assert [n["node"] for n in root["nodes"]] == ["a", "b", "c", "d"]
    exported = api(alice).get(f"{url}export/?as=json")
    assert exported["Content-Type"].startswith("application/json")
    assert exported.json()["format"] == "acc-dag/1"
    script = api(alice).get(f"{url}export/?as=wkube")
    assert script["Content-Type"].startswith("text/x-python")
    assert wkube.parse_wkube(script.content.decode())["edges"] == exported.json()["edges"]
    assert api(alice).get(f"{url}export/?as=yaml").status_code == 400

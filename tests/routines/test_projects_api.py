"""Projects and membership over REST, for alice (owner), bob (member) and charlie (stranger)."""

import pytest

from routines.models import Membership

pytestmark = pytest.mark.django_db


def test_creator_becomes_owner_and_strangers_see_nothing(api, alice, charlie):
    created = api(alice).post("/api/v1/projects/", {"slug": "crops", "name": "Crop models"}, format="json")
    assert created.status_code == 201
    assert created.json()["role"] == "owner"
    assert api(alice).get("/api/v1/projects/crops/").json()["name"] == "Crop models"
    assert api(charlie).get("/api/v1/projects/crops/").status_code == 404
    assert api(charlie).get("/api/v1/projects/").json() == []


def test_unknown_and_foreign_projects_look_the_same(api, project, charlie):
    foreign = api(charlie).get("/api/v1/projects/demo/")
    missing = api(charlie).get("/api/v1/projects/nope/")
    assert foreign.status_code == missing.status_code == 404
    assert "not found" in foreign.json()["detail"]


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"slug": "Bad Slug", "name": "x"}, "slug"),
        ({"name": "x"}, "slug"),
        ({"slug": "demo", "name": "again"}, "already exists"),
    ],
)
def test_bad_project_input_is_400_or_409_with_detail(api, alice, project, body, needle):
    response = api(alice).post("/api/v1/projects/", body, format="json")
    assert response.status_code in (400, 409)
    assert needle in response.json()["detail"]


def test_owner_manages_members_and_members_cannot(api, project, alice, bob, charlie):
    added = api(alice).post("/api/v1/projects/demo/members/", {"username": "charlie", "role": "viewer"}, format="json")
    assert added.status_code == 201
    assert api(charlie).get("/api/v1/projects/demo/").json()["role"] == "viewer"
    refused = api(bob).patch("/api/v1/projects/demo/members/charlie/", {"role": "owner"}, format="json")
    assert refused.status_code == 403
    changed = api(alice).patch("/api/v1/projects/demo/members/charlie/", {"role": "maintainer"}, format="json")
    assert changed.json()["role"] == "maintainer"
    names = {m["username"] for m in api(bob).get("/api/v1/projects/demo/members/").json()}
    assert names == {"alice", "bob", "charlie"}
    assert api(alice).delete("/api/v1/projects/demo/members/charlie/").status_code == 204
    assert api(charlie).get("/api/v1/projects/demo/").status_code == 404


def test_last_owner_cannot_leave(api, project, alice):
    response = api(alice).delete("/api/v1/projects/demo/members/alice/")
    assert response.status_code == 400
    assert "at least one owner" in response.json()["detail"]
    assert Membership.objects.filter(project=project, user=alice).exists()


def test_openapi_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/jobs/{id}/logs/" in response.content

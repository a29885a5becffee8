"""Versions of a hosted model through the API: a new version becomes the default, a deprecated one stays
runnable and names its successor, an archived one can no longer be launched and gives up the default, and
runs of every version stay readable."""

import pytest

from hosting.models import HostedRun
from jobs.models import Job
from routines import services as routines
from tests.hosting.conftest import SQUARE_COMMAND, SQUARE_SCHEMA, publish, square_routine

pytestmark = pytest.mark.django_db

VERSIONS = "/api/v1/hosted/square/versions/"


@pytest.fixture
def square(project, alice):
    return publish(alice, square_routine(project, alice))


def edit_routine(routine, user, command):
    task = {
        "name": routine.name,
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": command, "conf": {}},
        "conf_schema": SQUARE_SCHEMA,
        "timeout": 120,
    }
    return routines.save_routine(project=routine.project, user=user, task=task, routine=routine)


def add_versions(api, alice, count):
    for _ in range(count):
        assert api(alice).post(VERSIONS, {}, format="json").status_code == 201


def set_status(api, alice, number, status, **extra):
    response = api(alice).patch(f"{VERSIONS}{number}/", {"status": status, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def launch(api, user, **body):
    return api(user).post("/api/v1/hosted/square/runs/", {"conf": {"n": 2}, **body}, format="json")


def test_a_new_version_pins_the_edited_routine_and_becomes_the_default(api, square, alice, carol):
    routine = square.default_version.routine_version.routine
    edit_routine(routine, alice, SQUARE_COMMAND + "; echo edited")
    added = api(alice).post(VERSIONS, {"notes": "Says it was edited."}, format="json")
    assert added.status_code == 201
    assert added.json()["number"] == 2 and added.json()["routine_version"]["number"] == 2
    assert added.json()["inputs_schema"] == square.default_version.inputs_schema, "schemas carry over"
    assert api(carol).get("/api/v1/hosted/square/").json()["default_version"] == 2

    latest = launch(api, carol).json()
    first = launch(api, carol, version=1).json()
    assert (latest["version"], first["version"]) == (2, 1)
    assert Job.objects.get(pk=first["job"]).routine_version.number == 1
    assert Job.objects.get(pk=latest["job"]).routine_version.number == 2


def test_a_deprecated_version_stays_runnable_and_names_its_successor(api, square, alice, carol):
    add_versions(api, alice, 2)
    shown = set_status(api, alice, 1, "deprecated")
    assert (shown["status"], shown["runnable"], shown["successor"]) == ("deprecated", True, 3)
    assert shown["status_changed_at"]
    pointed = set_status(api, alice, 2, "deprecated", successor=3)
    assert pointed["successor"] == 3

    seen = {v["number"]: v for v in api(carol).get(VERSIONS).json()}
    assert {n: (v["status"], v["successor"]) for n, v in seen.items()} == {
        1: ("deprecated", 3),
        2: ("deprecated", 3),
        3: ("active", None),
    }
    run = launch(api, carol, version=1)
    assert run.status_code == 201 and run.json()["version"] == 1

    bad = api(alice).patch(f"{VERSIONS}2/", {"status": "deprecated", "successor": 2}, format="json")
    assert bad.status_code == 400 and "successor must be another version" in bad.json()["detail"]

    back = set_status(api, alice, 1, "active")
    assert (back["status"], back["successor"]) == ("active", None)


def test_an_archived_version_is_not_runnable_gives_up_the_default_and_its_runs_stay_readable(api, square, alice, carol):
    add_versions(api, alice, 2)
    set_status(api, alice, 2, "deprecated")  # names 3 as its successor
    past = launch(api, carol, version=3).json()

    archived = set_status(api, alice, 3, "archived")
    assert (archived["status"], archived["runnable"]) == ("archived", False)
    detail = api(carol).get("/api/v1/hosted/square/").json()
    assert detail["default_version"] == 2
    assert {v["number"]: v["successor"] for v in detail["versions"]}[2] is None, "not pointed to an archived one"

    jobs, runs = Job.objects.count(), HostedRun.objects.count()
    refused = launch(api, carol, version=3)
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        "Version 3 of 'square' is archived and can no longer be launched. Launch version 2 instead."
    )
    assert (Job.objects.count(), HostedRun.objects.count()) == (jobs, runs)
    assert launch(api, carol).json()["version"] == 2

    again = api(carol).get(past["status_url"])
    assert again.status_code == 200 and again.json()["version"] == 3 and again.json()["detail"]["conf"]["n"] == "2"
    assert past["id"] in [r["id"] for r in api(carol).get("/api/v1/hosted/square/runs/").json()]
    assert api(alice).get(f"{VERSIONS}3/").json()["status"] == "archived"
    usage = api(alice).get("/api/v1/hosted/square/usage/").json()
    assert {v["version"]: v["runs"] for v in usage["versions"]} == {2: 1, 3: 1}

    kept = api(alice).delete("/api/v1/hosted/square/")
    assert kept.status_code == 409 and "archive its versions instead" in kept.json()["detail"]
    made_default = api(alice).patch("/api/v1/hosted/square/", {"default_version": 3}, format="json")
    assert made_default.status_code == 400 and "archived version cannot be the default" in made_default.json()["detail"]


def test_with_every_version_archived_nothing_launches_until_one_is_reactivated(api, square, alice, carol):
    add_versions(api, alice, 1)
    set_status(api, alice, 2, "archived")
    set_status(api, alice, 1, "archived")
    assert api(carol).get("/api/v1/hosted/square/").json()["default_version"] is None
    refused = launch(api, carol)
    assert refused.status_code == 400
    assert refused.json()["detail"] == "'square' has no version that can be launched; ask its author to publish one."
    assert Job.objects.count() == 0

    set_status(api, alice, 2, "active")
    assert api(carol).get("/api/v1/hosted/square/").json()["default_version"] == 2
    assert launch(api, carol).json()["version"] == 2


def test_an_unknown_version_is_named_with_the_ones_that_exist(api, square, alice, carol):
    add_versions(api, alice, 1)
    missing = api(carol).get(f"{VERSIONS}9/")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "'square' has no version 9; its versions are 1, 2."
    assert launch(api, carol, version=9).json()["detail"] == missing.json()["detail"]

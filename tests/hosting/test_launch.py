"""Launching a hosted routine through the portal API: it runs in the launcher's own area, with their input,
and writes its outputs there; the author sees the run but not what the launcher brought."""

import pytest

from hosting import access
from hosting import services as hosting
from hosting.models import HostedRun
from jobs.models import Job, LogChunk
from tests.conftest import wait_for_status
from tests.hosting.conftest import publish, square_routine, write

pytestmark = pytest.mark.django_db(transaction=True)


def test_portal_api_launch_runs_in_the_launchers_area_and_returns_outputs(api, start_worker, project, alice, carol):
    start_worker("local")
    model = publish(alice, square_routine(project, alice))
    home = hosting.home_project(carol)
    write(home, "mine/data.txt", b"carol's private line\n")

    response = api(carol).post(
        "/api/v1/hosted/square/runs/",
        {"conf": {"n": 7}, "inputs": {"data": "mine/data.txt"}, "secrets": {"API_TOKEN": "s3cr3t-value"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["version"] == 1 and run["status_url"].endswith(f"/api/v1/hosted/square/runs/{run['id']}/")
    job = wait_for_status(run["job"], "SUCCEEDED")
    assert job.project == home and job.user == carol

    status = api(carol).get(run["status_url"]).json()
    assert status["status"] == "SUCCEEDED"
    [out] = status["detail"]["outputs"]
    assert out["path"].startswith("hosted/square/") and out["path"].endswith("/results/result.txt")
    body = b"".join(api(carol).get(out["url"]).streaming_content)
    assert body == b"square=49\ncarol's private line\n"

    log = "".join(LogChunk.objects.filter(job=job).values_list("text", flat=True))
    assert "s3cr3t-value" not in log and "token-length=12" in log
    assert "s3cr3t-value" not in str(status)

    # the author sees the run, not carol's inputs, conf, outputs or her project
    [seen] = api(alice).get("/api/v1/hosted/square/runs/").json()
    assert seen["user"] == "carol" and seen["status"] == "SUCCEEDED"
    assert seen["detail"] is None and seen["project"] is None
    assert api(alice).get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert api(alice).get(out["url"]).status_code == 404

    usage = api(alice).get("/api/v1/hosted/square/usage/").json()
    assert usage["versions"][0]["runs"] == 1 and usage["versions"][0]["success_rate"] == 1.0
    assert usage["users"] == [{"user": "carol", "runs": 1}]

    # the same launch again is answered from the build-system cache, into the same folder
    again = (
        api(carol)
        .post(
            "/api/v1/hosted/square/runs/",
            {"conf": {"n": 7}, "inputs": {"data": "mine/data.txt"}, "secrets": {"API_TOKEN": "s3cr3t-value"}},
            format="json",
        )
        .json()
    )
    assert again["status"] == "SUCCEEDED" and again["reused_from"] == job.pk
    assert HostedRun.objects.count() == 2 and model.runs.count() == 2


@pytest.mark.django_db
def test_bad_launches_are_refused_and_start_nothing(api, project, alice, carol, bob):
    routine = square_routine(project, alice)
    square = publish(alice, routine)
    link_model = publish(alice, routine, slug="square-link", policy="link")
    token = access.link_token_of(link_model)
    hosting.revoke_link(model=link_model, user=alice)
    required = [{"name": "data", "title": "Your data", "kind": "file", "required": True, "target": "/code/in/data.txt"}]
    hosting.add_version(model=square, user=alice, data={"inputs_schema": required})
    hosting.set_version_status(model=square, user=alice, number=1, status="archived")
    write(project, "secret/alice.txt", b"alice only")
    write(hosting.home_project(carol), "mine/data.txt", b"carol's")
    mine = {"data": "mine/data.txt"}
    cases = [
        (
            {"conf": {"n": "seven"}, "inputs": mine},
            400,
            "conf does not match the model's schema: n: 'seven' is not of type 'integer'",
        ),
        ({"conf": {}, "inputs": mine}, 400, "n: Required"),
        ({"conf": {"n": 1}}, 400, "Input 'data' (Your data) is required: give a file path."),
        ({"conf": {"n": 1}, "inputs": {"data": "acc://demo/secret/alice.txt"}}, 400, "outside project"),
        ({"conf": {"n": 1}, "inputs": {"data": "../../etc/passwd"}}, 400, "contains '..'; paths must stay inside"),
        ({"conf": {"n": 1}, "inputs": {"data": "missing.txt"}}, 400, "does not exist"),
        ({"conf": {"n": 1}, "inputs": {**mine, "extra": "x"}}, 400, "Unknown inputs: extra. This model takes: data"),
        ({"conf": {"n": 1}, "inputs": mine, "secrets": {"OTHER": "x"}}, 400, "Unknown secrets: OTHER."),
        ({"conf": {"n": 1}, "version": 9}, 404, "no version 9"),
        (
            {"conf": {"n": 1}, "version": 1},
            400,
            "Version 1 of 'square' is archived and can no longer be launched. Launch version 2 instead.",
        ),
        ({"conf": {"n": 1}, "inputs": mine, "project": "demo"}, 404, "not a member"),
    ]
    for body, code, text in cases:
        response = api(carol).post("/api/v1/hosted/square/runs/", body, format="json")
        assert response.status_code == code, (body, response.content)
        assert text in response.json()["detail"], (body, response.json())
    revoked = api(carol).post(f"/api/v1/hosted/square-link/runs/?token={token}", {"conf": {"n": 1}}, format="json")
    assert revoked.status_code == 404
    assert "If you were given a link, it may have been revoked or replaced" in revoked.json()["detail"]
    assert Job.objects.count() == 0 and HostedRun.objects.count() == 0

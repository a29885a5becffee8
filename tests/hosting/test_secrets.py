"""A secret given at launch reaches the job's environment and nowhere else: not the log, not an API answer to
the launcher or the author, not the admin; at rest it is encrypted."""

import io
import json
import zipfile

import pytest

from accelerator.crypto import decrypt_json
from hosting.models import HostedRun
from jobs.logs import MASK
from jobs.models import Job, LogChunk
from routines import services as routines
from tests.conftest import wait_for_status
from tests.hosting.conftest import SQUARE_SCHEMA, publish

SECRET = "tok-9f3a-do-not-show-me"
# Prints the secret on purpose: the log must show it masked.
LEAKY_COMMAND = 'echo "square=$((n*n))"; echo "token=$API_TOKEN"; echo "token-length=${#API_TOKEN}"'


def leaky_routine(project, user, conf_schema=SQUARE_SCHEMA):
    task = {
        "name": "leaky",
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": LEAKY_COMMAND, "conf": {}},
        "conf_schema": conf_schema,
        "timeout": 120,
    }
    return routines.save_routine(project=project, user=user, task=task)


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.django_db(transaction=True)
def test_a_secret_given_at_launch_is_never_shown(api, client, start_worker, project, alice, carol, admin_user):
    start_worker("local")
    model = publish(alice, leaky_routine(project, alice), slug="leaky", outputs=[], inputs_schema=[])
    launched = api(carol).post(
        "/api/v1/hosted/leaky/runs/", {"conf": {"n": 3}, "secrets": {"API_TOKEN": SECRET}}, format="json"
    )
    assert launched.status_code == 201 and SECRET.encode() not in launched.content
    run = launched.json()
    job = wait_for_status(run["job"], {"SUCCEEDED", "FAILED"})
    assert job.status == "SUCCEEDED", job.message

    log = "".join(LogChunk.objects.filter(job=job).order_by("seq").values_list("text", flat=True))
    assert f"token={MASK}" in log and f"token-length={len(SECRET)}" in log, "the job got it; the log hides it"
    assert SECRET not in log

    base = "/api/v1/hosted/leaky"
    seen_by_both = [f"{base}/", f"{base}/versions/", f"{base}/runs/", f"{base}/runs/{run['id']}/"]
    launchers = [f"/api/v1/jobs/{job.pk}/", f"/api/v1/jobs/{job.pk}/logs/", f"/api/v1/jobs/{job.pk}/why/"]
    answers = {("alice", url): api(alice).get(url) for url in [*seen_by_both, f"{base}/usage/"]}
    answers.update({("carol", url): api(carol).get(url) for url in [*seen_by_both, *launchers]})
    answers["carol", "directory"] = api(carol).get(f"/api/v1/jobs/{job.pk}/directory/")
    bodies = {}
    for (who, url), response in answers.items():
        assert response.status_code == 200, (who, url, response.status_code)
        bodies[who, url] = body_of(response)
        assert SECRET.encode() not in bodies[who, url], (who, url)
    archive = zipfile.ZipFile(io.BytesIO(bodies["carol", "directory"]))
    assert any(name.endswith("log.txt") for name in archive.namelist())
    for name in archive.namelist():
        assert SECRET.encode() not in archive.read(name), name
    assert answers["carol", f"{base}/runs/{run['id']}/"].json()["status"] == "SUCCEEDED"

    client.force_login(admin_user)
    hosted_run = HostedRun.objects.get(pk=run["id"])
    pages = [
        "/admin/hosting/hostedrun/",
        f"/admin/hosting/hostedrun/{hosted_run.pk}/change/",
        f"/admin/hosting/hostedmodel/{model.pk}/change/",
        "/admin/workers/job/",
        f"/admin/workers/job/{job.pk}/change/",
        "/admin/workers/logchunk/",
        "/admin/workers/jobevent/",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200 and SECRET.encode() not in response.content, page
    assert b"leaky run #" in client.get(pages[0]).content, "the run is listed"

    row = Job.objects.filter(pk=job.pk).values().get()
    stored = bytes(row.pop("secrets_encrypted"))
    assert SECRET.encode() not in stored and decrypt_json(stored) == {"API_TOKEN": SECRET}
    assert SECRET not in json.dumps(row, default=str)
    assert SECRET not in json.dumps(HostedRun.objects.filter(pk=run["id"]).values().get(), default=str)


@pytest.mark.django_db
def test_a_password_field_of_the_conf_is_kept_as_a_secret_and_never_echoed(api, project, alice, carol):
    conf_schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "API_TOKEN": {"type": "string", "format": "password", "minLength": 20, "pattern": "^tok-"},
        },
        "required": ["n", "API_TOKEN"],
    }
    routine = leaky_routine(project, alice, conf_schema=conf_schema)
    publish(alice, routine, slug="leaky", outputs=[], inputs_schema=[], secrets_schema=None)

    wrong = api(carol).post("/api/v1/hosted/leaky/runs/", {"conf": {"n": 2, "API_TOKEN": "short-one"}}, format="json")
    assert wrong.status_code == 400 and b"short-one" not in wrong.content
    assert "API_TOKEN: not valid; the value is secret" in wrong.json()["detail"]
    assert Job.objects.count() == 0

    launched = api(carol).post("/api/v1/hosted/leaky/runs/", {"conf": {"n": 2, "API_TOKEN": SECRET}}, format="json")
    assert launched.status_code == 201 and SECRET.encode() not in launched.content
    job = Job.objects.get(pk=launched.json()["job"])
    assert "API_TOKEN" not in job.conf and job.conf["n"] == "2"
    assert decrypt_json(job.secrets_encrypted) == {"API_TOKEN": SECRET}
    assert "API_TOKEN" not in launched.json()["detail"]["conf"]

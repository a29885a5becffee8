"""An interactive routine is just conf: every entry point keeps `interactive_socket`; bad sockets and too
many sessions are refused at dispatch; the cache never answers a session with an earlier one."""

from __future__ import annotations

import json

import pytest
from acc_client.task import WKubeTask

from hosting import services as hosting
from jobs.models import Job
from routines import services

pytestmark = pytest.mark.django_db

SOCKET = {"interactive_socket": "0.0.0.0:8787"}


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):
    """Project files of this test only (project ids come back in the next test session)."""
    settings.MEDIA_ROOT = tmp_path / "storage"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }


def accli_task(conf: dict, name: str = "lab") -> dict:
    """What `accli dispatch` sends for WKubeTask(..., conf=conf)."""
    return {
        "name": name,
        "job_kwargs": {
            "docker_image": "acc-test/python:latest",
            "command": "python3 -m http.server 8787",
            "conf": conf,
        },
        "timeout": 600,
    }


def dispatch(api, user, body) -> tuple[int, dict]:
    response = api(user).post("/api/v1/aterm-cli/demo/jobs/dispatch/", body, format="json")
    return response.status_code, response.json()


def make_routine(project, user, *, conf=None, schema=None, name="lab"):
    task = accli_task({**SOCKET, **(conf or {})}, name=name)
    if schema is not None:
        task["conf_schema"] = schema
    return services.save_routine(project=project, user=user, task=task)


def test_accli_and_our_client_dispatch_keep_the_socket(api, project, alice):
    status, body = dispatch(api, alice, accli_task(SOCKET))
    assert status == 200, body
    assert Job.objects.get(pk=body["job_id"]).conf["interactive_socket"] == "0.0.0.0:8787"

    ours = WKubeTask(
        name="lab2", docker_image="acc-test/python:latest", command="python3 -m http.server 8787", conf=SOCKET
    ).description
    status, body = dispatch(api, alice, ours)
    assert status == 200, body
    node = Job.objects.get(flow_run__root_id=body["job_id"], node_key="lab2")  # `acc` sends our DAG format
    assert node.conf["interactive_socket"] == "0.0.0.0:8787"


def test_the_run_form_keeps_the_socket_with_and_without_a_schema(client, project, alice):
    client.force_login(alice)
    plain = make_routine(project, alice)
    assert (
        client.post(f"/routines/{plain.pk}/", {"conf_json": json.dumps({"conf": [], "secrets": []})}).status_code == 302
    )
    schema = {"type": "object", "properties": {"WHO": {"type": "string"}}}
    typed = make_routine(project, alice, schema=schema, name="typed")
    assert client.post(f"/routines/{typed.pk}/", {"conf_json": json.dumps({"WHO": "ada"})}).status_code == 302
    confs = [job.conf for job in Job.objects.order_by("pk")]
    assert [c["interactive_socket"] for c in confs] == ["0.0.0.0:8787", "0.0.0.0:8787"]
    assert confs[1]["WHO"] == "ada"


def test_a_launch_from_the_file_explorer_keeps_the_socket(client, project, alice):
    from files import services as files

    files.make_folder(project=project, relpath="data")
    routine = make_routine(project, alice)
    client.force_login(alice)
    value = json.dumps({"conf": [], "secrets": []})
    assert client.post(f"/routines/{routine.pk}/", {"conf_json": value, "selected": ["data"]}).status_code == 302
    conf = Job.objects.get().conf
    assert conf["interactive_socket"] == "0.0.0.0:8787" and json.loads(conf["selected_folders"]) == ["inputs/data/"]


def test_a_hosted_model_launch_keeps_the_socket(project, alice, charlie):
    routine = make_routine(project, alice, schema={"type": "object", "properties": {}})
    model = hosting.publish(
        user=alice,
        project_slug="demo",
        data={"slug": "lab", "title": "A lab", "description": "", "policy": "public", "routine": routine.pk},
    )
    run = hosting.launch(model=model, user=charlie, conf={})
    assert run.job.conf["interactive_socket"] == "0.0.0.0:8787"
    assert run.job.project.slug == "home-charlie"


@pytest.mark.parametrize(
    "value, message",
    [
        ("8787", "no port"),
        ("0.0.0.0:99999", "1 to 65535"),
        ("example.org:80", "IP address"),
        ("http://0.0.0.0:80", "only TCP"),
        ("unix://tmp/s.sock", "absolute"),
        ("unix:///etc/s.sock", "folder of its own"),
        ("unix:///tmp/../etc/s.sock", "plain path"),
    ],
)
def test_a_malformed_socket_is_refused_at_dispatch(api, project, alice, value, message):
    status, body = dispatch(api, alice, accli_task({"interactive_socket": value}))
    assert status == 400 and message in body["detail"]
    assert not Job.objects.exists()


def test_a_loopback_socket_is_refused_on_docker_only(api, project, alice, settings):
    settings.ACC_BACKEND = "docker"
    status, body = dispatch(api, alice, accli_task({"interactive_socket": "127.0.0.1:8787"}))
    assert status == 400 and "listen on 0.0.0.0:8787" in body["detail"]
    settings.ACC_BACKEND = "local"
    assert dispatch(api, alice, accli_task({"interactive_socket": "127.0.0.1:8787"}))[0] == 200


def test_the_operator_caps_live_sessions_per_user(api, project, alice, bob, settings):
    settings.ACC_INTERACTIVE_MAX_PER_USER = 2
    assert dispatch(api, alice, accli_task(SOCKET, name="a"))[0] == 200
    assert dispatch(api, alice, accli_task(SOCKET, name="b"))[0] == 200
    status, body = dispatch(api, alice, accli_task(SOCKET, name="c"))
    assert status == 409 and body["code"] == "too_many_sessions" and "2 interactive sessions" in body["detail"]
    assert dispatch(api, bob, accli_task(SOCKET, name="c"))[0] == 200, "the cap is per user"
    assert dispatch(api, alice, accli_task({}, name="batch"))[0] == 200, "ordinary jobs are not counted"
    Job.objects.filter(name="a").update(status="SUCCEEDED")
    assert dispatch(api, alice, accli_task(SOCKET, name="c"))[0] == 200, "an ended session frees its slot"


def test_an_identical_session_is_never_reused_or_joined(api, project, alice):
    first = dispatch(api, alice, accli_task(SOCKET))[1]["job_id"]
    second = dispatch(api, alice, accli_task(SOCKET))[1]["job_id"]
    jobs = Job.objects.in_bulk([first, second])
    assert jobs[second].status == "QUEUED" and jobs[second].reused_from_id is None
    assert "interactive session is never reused" in jobs[second].cache_note
    Job.objects.filter(pk=first).update(status="SUCCEEDED")
    third = Job.objects.get(pk=dispatch(api, alice, accli_task(SOCKET))[1]["job_id"])
    assert third.status == "QUEUED" and third.reused_from_id is None

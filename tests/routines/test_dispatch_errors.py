"""Bad dispatches: each is a 4xx with a clear `detail`, and nothing is half-written."""

import copy

import pytest

from jobs.models import Job
from routines.models import BaseStack, Project, Routine, RoutineVersion
from tests.files.helpers import put_folder

pytestmark = pytest.mark.django_db

URL = "/api/v1/aterm-cli/{slug}/jobs/dispatch/"


def node(**kwargs):
    """A task node exactly as accli 2.0.14 serialises it."""
    base = {
        "is_holder_job": False,
        "build_only_task": False,
        "name": "single routine",
        "execute_cluster": "WKUBE",
        "job_location": "acc_native_jobs.dispatch_wkube_task",
        "job_args": [],
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": "echo hi"},
        "required_cores": 1.0,
        "required_ram": 536870912.0,
        "required_storage_local": 2147483648.0,
        "required_storage_workflow": 1073741824.0,
        "job_secrets": {},
        "timeout": 3600,
        "pvc_id": None,
        "node_id": None,
        "ignore_duplicate_job": False,
        "free_node": True,
        "children": [],
        "callback": None,
    }
    base["job_kwargs"] = {**base["job_kwargs"], **kwargs.pop("job_kwargs", {})}
    base.update(kwargs)
    return base


def nothing_written():
    assert Routine.objects.count() == 0
    assert RoutineVersion.objects.count() == 0
    assert Job.objects.count() == 0


def dispatch(api, user, body, slug="demo"):
    return api(user).post(URL.format(slug=slug), body, format="json")


def test_a_valid_dispatch_returns_the_job_id(api, alice, project):
    response = dispatch(api, alice, node())
    assert response.status_code == 200
    job = Job.objects.get(pk=response.json()["job_id"])
    assert job.status == "QUEUED" and job.routine_version.routine.name == "single routine"
    assert job.required_ram == 536870912 and job.timeout == 3600


def no_command():
    body = node()
    del body["job_kwargs"]["command"]
    return body


def blank_command():
    return node(job_kwargs={"command": "  "})


@pytest.mark.parametrize(
    "make_body,status,needle",
    [
        (no_command, 400, "command is required"),
        (blank_command, 400, "command is required"),
        (
            lambda: node(
                job_kwargs={
                    "docker_image": None,
                    "base_stack": "NOPE",
                    "repo_url": "s3accjobstore://manifest_" + "a" * 40 + ".json",
                    "repo_branch": "a" * 40,
                }
            ),
            400,
            "Unknown base_stack 'NOPE'",
        ),
        (lambda: {**node(job_kwargs={"docker_image": None}), "job_kwargs": {"command": "x"}}, 400, "No stack given"),
        (lambda: node(job_kwargs={"conf": {"input_mappings": "acc://other/data/:/code/in/"}}), 400, "outside"),
        (lambda: node(job_kwargs={"conf": {"output_mappings": "/code/out/:acc://demo/../../etc/"}}), 400, ".."),
        (lambda: node(job_kwargs={"conf": {"input_mappings": "/code/in/"}}), 400, "must start with acc://"),
        (lambda: node(job_kwargs={"conf": {"bad-name": "x"}}), 400, "environment variable name"),
        (lambda: node(required_ram="lots"), 400, "required_ram must be a number"),
        (lambda: node(timeout=0), 400, "timeout must be at least 1"),
        (lambda: node(children=[node(name="kid", job_kwargs={"command": ""})]), 400, "Node kid: command is required"),
        (lambda: node(is_holder_job=True, job_kwargs={}, children=[]), 400, "no task that runs"),
        (
            lambda: {"format": "acc-dag/1", "nodes": [node(id="a"), node(id="b")], "edges": [["a", "b"], ["b", "a"]]},
            400,
            "cycle",
        ),
        (
            lambda: node(
                job_kwargs={"repo_url": "s3accjobstore://manifest_" + "b" * 40 + ".json", "repo_branch": "b" * 40}
            ),
            400,
            "upload it first",
        ),
        (lambda: ["not", "an", "object"], 400, "JSON object"),
    ],
)
def test_bad_dispatch_is_refused_with_detail_and_writes_nothing(
    api, alice, project, django_user_model, make_body, status, needle
):
    Project.objects.create(slug="other", name="Somebody else's")
    response = dispatch(api, alice, make_body())
    assert response.status_code == status, response.content
    assert needle in response.json()["detail"], response.json()
    nothing_written()


def test_unknown_project_and_another_users_project_look_the_same(api, alice, charlie, project):
    unknown = dispatch(api, alice, node(), slug="no-such-project")
    foreign = dispatch(api, charlie, node())
    assert unknown.status_code == foreign.status_code == 404
    assert "not found" in foreign.json()["detail"]
    nothing_written()


def test_viewers_cannot_dispatch(api, alice, charlie, project):
    api(alice).post("/api/v1/projects/demo/members/", {"username": "charlie", "role": "viewer"}, format="json")
    response = dispatch(api, charlie, node())
    assert response.status_code == 403 and "member role" in response.json()["detail"]
    nothing_written()


@pytest.mark.parametrize("header", [None, "aca_not-a-token"])
def test_dispatch_without_a_valid_token_is_401(client, project, header):
    extra = {"HTTP_X_AUTHORIZATION": header} if header else {}
    response = client.post(URL.format(slug="demo"), node(), content_type="application/json", **extra)
    assert response.status_code == 401 and response.json()["detail"]
    nothing_written()


def test_dispatch_of_an_uploaded_folder_on_a_base_stack_records_an_immutable_version(api, alice, project):
    BaseStack.objects.create(name="PYTHON3_7", image="acc-test/python:latest", workdir="/code")
    sha = put_folder(project, {"main.py": (b"print('hi')\n", 0o100644)})
    body = node(
        job_kwargs={
            "docker_image": None,
            "base_stack": "PYTHON3_7",
            "command": "python main.py",
            "repo_url": f"s3accjobstore://manifest_{sha}.json",
            "repo_branch": sha,
        }
    )
    body["job_kwargs"] = {k: v for k, v in body["job_kwargs"].items() if v is not None}
    first = Job.objects.get(pk=dispatch(api, alice, body).json()["job_id"])
    second = Job.objects.get(pk=dispatch(api, alice, copy.deepcopy(body)).json()["job_id"])
    assert first.routine_version_id == second.routine_version_id, "the same spec is the same version"
    assert first.routine_version.spec["stack"]["image"] == "acc-test/python:latest", "the stack is snapshotted"
    changed = copy.deepcopy(body)
    changed["job_kwargs"]["command"] = "python main.py --fast"
    third = Job.objects.get(pk=dispatch(api, alice, changed).json()["job_id"])
    assert third.routine_version.number == 2 and first.routine_version.number == 1

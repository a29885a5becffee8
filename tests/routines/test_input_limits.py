"""Input the database or a worker cannot take is a 400 (or 413) that names the problem, never a 500 later.

Each case here once answered 500, or was saved and failed only when it ran: 10,000 nested `[`, numbers
beyond 64 bits or infinite, NUL characters, resources no job can ever get, UTC offsets PostgreSQL
refuses, bodies that are not objects.
"""

import json

import pytest

from jobs.models import Job
from routines.models import Routine

pytestmark = pytest.mark.django_db

ROUTINES = "/api/v1/projects/demo/routines/"
DISPATCH = "/api/v1/aterm-cli/demo/jobs/dispatch/"
IMAGE = "acc-test/busybox:latest"


def routine_body(**extra):
    return {"name": "limits", "docker_image": IMAGE, "command": "echo hi", **extra}


def task(**extra):
    return {"name": "limits", "job_kwargs": {"docker_image": IMAGE, "command": "echo hi"}, **extra}


def post_raw(client, url, text: str):
    return client.post(url, text, content_type="application/json")


def assert_400(response, *words):
    assert response.status_code == 400, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) >= {"detail", "code"}
    for word in words:
        assert word in body["detail"], body["detail"]
    return body


# --- the JSON parser -----------------------------------------------------------------------------------
@pytest.mark.parametrize("url", [DISPATCH, ROUTINES, "/api/v1/projects/", "/api/v1/hosted/"])
def test_ten_thousand_nested_brackets_are_a_400(api, alice, project, url):
    assert_400(post_raw(api(alice), url, "[" * 10_000), "nested")


def test_nesting_deeper_than_the_limit_is_a_400_even_when_python_could_parse_it(api, alice, project):
    body = json.dumps(task(job_secrets={"A": "b"}, extra=json.loads("[" * 200 + "]" * 200)))
    assert_400(post_raw(api(alice), DISPATCH, body), "nested")
    assert Job.objects.count() == 0


def test_an_integer_beyond_64_bits_anywhere_in_a_body_is_a_400(api, alice, project):
    body = json.dumps(task(required_ram=2**70))
    assert_400(post_raw(api(alice), DISPATCH, body), "64 bits")
    assert Job.objects.count() == 0


def test_an_infinite_number_is_a_400(api, alice, project):
    assert_400(post_raw(api(alice), DISPATCH, json.dumps(task())[:-1] + ', "required_cores": 1e999}'), "finite")
    assert Job.objects.count() == 0


def test_a_nul_character_in_any_string_is_a_400(api, alice, project):
    response = api(alice).post(DISPATCH, task(name="nul\x00name"), format="json")
    assert_400(response, "NUL")
    assert Routine.objects.count() == 0


def test_a_json_body_beyond_the_memory_limit_is_a_413(api, alice, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    response = api(alice).post(ROUTINES, routine_body(description="x" * 5000), format="json")
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["detail"]
    assert Routine.objects.count() == 0


def test_a_body_that_is_not_an_object_is_a_400_where_an_object_is_expected(api, alice, project):
    dispatched = api(alice).post(
        DISPATCH,
        task(job_kwargs={"docker_image": IMAGE, "command": "sleep 1", "conf": {"interactive_socket": "0.0.0.0:8787"}}),
        format="json",
    )
    assert dispatched.status_code == 200, dispatched.content
    job_id = dispatched.json()["job_id"]
    assert_400(api(alice).post(f"/api/v1/jobs/{job_id}/session/extend/", [1, 2], format="json"))
    assert_400(api(alice).post(DISPATCH, [task()], format="json"), "object")
    assert_400(api(alice).post(ROUTINES, ["limits"], format="json"))


# --- resources are checked when a routine is saved or dispatched --------------------------------------------
TOO_MUCH = [
    ("required_ram", 2**62, "ACC_MAX_RAM"),
    ("required_cores", 100_000.0, "ACC_MAX_CORES"),
    ("required_storage_local", 2**60, "ACC_MAX_STORAGE"),
    ("required_storage_workflow", 2**60, "ACC_MAX_STORAGE"),
    ("timeout", 10**12, "ACC_MAX_TIMEOUT"),
    ("build_timeout", 10**9, "ACC_MAX_TIMEOUT"),
]


@pytest.mark.parametrize(("field", "value", "setting"), TOO_MUCH)
def test_saving_a_routine_that_asks_for_more_than_the_platform_allows_is_a_400_naming_field_and_limit(
    api, alice, project, field, value, setting
):
    body = assert_400(
        api(alice).post(ROUTINES, routine_body(**{field: value}), format="json"), field, "at most", setting
    )
    assert "ask for less" in body["detail"]
    assert Routine.objects.count() == 0


@pytest.mark.parametrize(("field", "value", "setting"), TOO_MUCH)
def test_dispatching_a_task_that_asks_for_more_than_the_platform_allows_is_a_400(
    api, alice, project, field, value, setting
):
    node = task(**{field: value}) if field != "build_timeout" else task()
    if field == "build_timeout":
        node["job_kwargs"]["build_timeout"] = value
    assert_400(api(alice).post(DISPATCH, node, format="json"), field, setting)
    assert Job.objects.count() == 0 and Routine.objects.count() == 0


def test_a_ram_of_two_to_the_seventy_is_refused_at_save_and_never_reaches_a_run(api, alice, project):
    """Once it was saved, and the run answered 500 (bigint out of range)."""
    assert_400(api(alice).post(ROUTINES, routine_body(required_ram=2**62), format="json"), "required_ram")
    assert_400(api(alice).post(DISPATCH, task(required_ram=2**62), format="json"), "required_ram")


def test_the_limits_come_from_the_operators_settings(api, alice, project, settings):
    settings.ACC_MAX_RAM = 2**41
    settings.ACC_MAX_TIMEOUT = 10**7
    response = api(alice).post(ROUTINES, routine_body(required_ram=2**41, timeout=10**7), format="json")
    assert response.status_code == 201, response.content
    run = api(alice).post(f"/api/v1/routines/{response.json()['id']}/run/", {}, format="json")
    assert run.status_code == 201, run.content
    assert run.json()["required_ram"] == 2**41 and run.json()["timeout"] == 10**7


def test_below_the_minimum_is_a_400_too(api, alice, project):
    assert_400(api(alice).post(ROUTINES, routine_body(required_cores=0), format="json"), "required_cores", "at least")
    assert_400(api(alice).post(ROUTINES, routine_body(timeout=0), format="json"), "timeout", "at least")


@pytest.mark.parametrize(
    ("node", "words"),
    [
        ({"retries": 10**6}, ("retries", "ACC_MAX_RETRIES")),
        ({"retries": "many"}, ("retries", "number")),
        ({"retry_backoff": 10**12}, ("retry_backoff", "ACC_MAX_RETRY_BACKOFF")),
        ({"retry_backoff": -1}, ("retry_backoff", "at least")),
    ],
)
def test_jobflow_retries_and_backoff_are_bounded(api, alice, project, node, words):
    flow = {
        "format": "acc-dag/1",
        "nodes": [{"id": "a", **task(), **node}, {"id": "b", **task(name="b")}],
        "edges": [["a", "b"]],
    }
    assert_400(api(alice).post(DISPATCH, flow, format="json"), "Node a", *words)
    assert Job.objects.count() == 0


# --- datetime filters --------------------------------------------------------------------------------------
@pytest.mark.parametrize("param", ["created_after", "created_before"])
@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T00:00:00-18:51",  # an offset PostgreSQL cannot store
        "2026-01-01T00:00:00+23:59",
        "9999-12-31T23:00:00-05:00",  # past year 9999 in UTC
        "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
        "2026-13-01T00:00:00Z",
    ],
)
def test_a_datetime_filter_postgresql_cannot_take_is_a_400(api, alice, project, param, value):
    assert_400(api(alice).get("/api/v1/jobs/", {param: value}), param)


def test_a_datetime_filter_with_a_large_but_real_offset_is_answered_in_utc(api, alice, project):
    dispatched = api(alice).post(DISPATCH, task(), format="json")
    assert dispatched.status_code == 200
    job = Job.objects.get()
    after = job.created_at.astimezone().replace(microsecond=0)
    from datetime import timedelta, timezone

    far = (job.created_at - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-15, minutes=-30)))
    shown = api(alice).get("/api/v1/jobs/", {"created_after": far.isoformat()})
    assert shown.status_code == 200 and [j["id"] for j in shown.json()["results"]] == [job.pk]
    later = api(alice).get("/api/v1/jobs/", {"created_after": (after + timedelta(hours=1)).isoformat()})
    assert later.status_code == 200 and later.json()["results"] == []


# --- addresses and odd shapes ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/hosted/?q=a%00b"),
        ("get", "/api/v1/jobs/?user=al%00ice"),
        ("delete", "/api/v1/projects/demo/members/b%00b/"),
        ("patch", "/api/v1/projects/demo/members/b%00b/"),
        ("get", "/api/v1/projects/demo/files/data%00.csv"),
    ],
)
def test_a_nul_character_in_the_address_is_a_400(api, alice, project, method, url):
    assert_400(
        getattr(api(alice), method)(url, {"role": "viewer"} if method == "patch" else None, format="json"), "NUL"
    )


def test_an_address_under_api_that_names_no_endpoint_is_a_json_404(api, alice):
    response = api(alice).get("/api/v1/jobs/not-a-number/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/oauth/device/token/", {"device_authorization_code": ["ABC"]}),
        ("/api/v1/oauth/device/access-token/", {"refresh_token": {"token": "x"}}),
    ],
)
def test_a_token_endpoint_given_something_else_than_a_string_is_a_400(api, url, body):
    assert_400(api(None).post(url, body, format="json"))


@pytest.mark.parametrize("name", ["x" * 201, ["not", "a", "name"]])
def test_a_jobflow_name_longer_than_its_column_or_not_a_string_is_a_400(api, alice, project, name):
    tree = {"name": name, "is_holder_job": True, "children": [task(name="a")]}
    assert_400(api(alice).post(DISPATCH, tree, format="json"), "name", "200 characters")
    native = {"format": "acc-dag/1", "name": name, "nodes": [{"id": "a", **task(name="a")}]}
    assert_400(api(alice).post(DISPATCH, native, format="json"), "name", "200 characters")
    assert Job.objects.count() == 0

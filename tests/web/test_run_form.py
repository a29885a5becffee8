"""The routine page and its Run form: generated from the conf schema, validated again on the server."""

import json
import re

import pytest

from accelerator.crypto import decrypt_json
from jobs.models import Job
from tests.web.conftest import make_routine

pytestmark = pytest.mark.django_db


def editor_config(response) -> dict:
    match = re.search(
        r'<script id="editor-config" type="application/json">(.*?)</script>', response.content.decode(), re.S
    )
    assert match, "the page must carry the editor configuration"
    return json.loads(match.group(1))


def post_run(client, routine, value, **extra):
    return client.post(f"/routines/{routine.pk}/", {"conf_json": json.dumps(value), **extra})


def test_routine_page_shows_description_stack_versions_and_the_schema_form(signed_in, routine, alice):
    response = signed_in(alice).get(f"/routines/{routine.pk}/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "The greet routine." in text and "image acc-test/busybox:latest" in text and "v1" in text
    config = editor_config(response)
    assert config["schema"]["properties"]["COUNT"]["maximum"] == 10
    # schema defaults, then the version's default conf typed by the schema; secrets never prefilled
    assert config["startval"] == {"GREETING": "hello", "COUNT": 3, "WHO": "world"}
    assert config["secrets"] == ["TOKEN"]


def test_a_routine_without_schema_gets_a_key_value_editor_with_its_defaults(signed_in, project, alice):
    routine = make_routine(project, alice, name="plain", schema=None, conf={"A": "1"})
    config = editor_config(signed_in(alice).get(f"/routines/{routine.pk}/"))
    assert config["schema"]["properties"]["conf"]["format"] == "table"
    assert config["startval"] == {"conf": [{"name": "A", "value": "1"}], "secrets": []}


def test_invalid_values_are_rejected_by_the_server_next_to_their_field(signed_in, routine, alice):
    response = post_run(signed_in(alice), routine, {"GREETING": "yo", "COUNT": 99, "WHO": "x"})
    assert response.status_code == 400
    errors = editor_config(response)["errors"]
    assert set(errors) == {"root.GREETING", "root.COUNT"}
    assert "10" in errors["root.COUNT"][0]
    assert not Job.objects.exists()


def test_a_missing_required_field_is_reported_on_that_field(signed_in, routine, alice):
    response = post_run(signed_in(alice), routine, {"COUNT": 2})
    assert editor_config(response)["errors"] == {"root.WHO": ["Required."]}
    assert not Job.objects.exists()


def test_secret_values_are_never_echoed_back(signed_in, routine, alice):
    response = post_run(signed_in(alice), routine, {"COUNT": 0, "WHO": "x", "TOKEN": "s3cr3t-value"})
    assert response.status_code == 400
    assert "s3cr3t-value" not in response.content.decode()
    assert "TOKEN" not in editor_config(response)["startval"]


def test_a_valid_form_runs_the_routine_and_opens_the_job_page(signed_in, routine, alice):
    response = post_run(signed_in(alice), routine, {"GREETING": "hi", "COUNT": 4, "WHO": "Ada", "TOKEN": "tok-123"})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.conf == {
        "GREETING": "hi",
        "COUNT": "4",
        "WHO": "Ada",
        "output_mappings": "/code/out/:acc://demo/out/",
    }
    assert decrypt_json(job.secrets_encrypted) == {"TOKEN": "tok-123"}
    assert job.user == alice and job.routine_version == routine.latest_version


def test_key_value_rows_become_conf_and_secrets(signed_in, project, alice):
    routine = make_routine(project, alice, name="plain", schema=None)
    value = {"conf": [{"name": "A", "value": "1"}], "secrets": [{"name": "KEY", "value": "k-999"}]}
    response = post_run(signed_in(alice), routine, value)
    job = Job.objects.get()
    assert response.status_code == 302
    assert job.conf == {"A": "1"} and decrypt_json(job.secrets_encrypted) == {"KEY": "k-999"}


def test_key_value_names_must_be_environment_names_and_unique(signed_in, project, alice):
    routine = make_routine(project, alice, name="plain", schema=None)
    bad = {"conf": [{"name": "not ok", "value": "1"}], "secrets": []}
    assert set(editor_config(post_run(signed_in(alice), routine, bad))["errors"]) == {"root.conf.0.name"}
    twice = {"conf": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}], "secrets": []}
    assert set(editor_config(post_run(signed_in(alice), routine, twice))["errors"]) == {"root.conf.1.name"}
    assert not Job.objects.exists()


def test_unreadable_form_data_is_an_error_not_a_crash(signed_in, routine, alice):
    response = signed_in(alice).post(f"/routines/{routine.pk}/", {"conf_json": "{nope"})
    assert response.status_code == 400 and "could not be read" in response.content.decode()


def test_bob_a_member_may_run_charlie_a_stranger_sees_nothing(signed_in, routine, bob, charlie, client):
    assert post_run(signed_in(bob), routine, {"COUNT": 1, "WHO": "b"}).status_code == 302
    client.logout()
    assert signed_in(charlie).get(f"/routines/{routine.pk}/").status_code == 404
    assert post_run(signed_in(charlie), routine, {"COUNT": 1, "WHO": "c"}).status_code == 404
    assert Job.objects.count() == 1


def test_a_viewer_sees_the_routine_but_no_run_form(signed_in, routine, project, django_user_model):
    from routines.models import Membership, Role

    viewer = django_user_model.objects.create_user("vera", password="x")
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)
    response = signed_in(viewer).get(f"/routines/{routine.pk}/")
    assert response.status_code == 200 and "run-form" not in response.content.decode()
    assert post_run(signed_in(viewer), routine, {"COUNT": 1, "WHO": "v"}).status_code in (400, 403)
    assert not Job.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client, routine):
    response = client.get(f"/routines/{routine.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")

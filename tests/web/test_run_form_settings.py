"""The Run form shows a routine's own settings (mappings, interactive socket) apart from the parameters."""

import pytest

from jobs.models import Job
from tests.web.conftest import make_routine
from tests.web.test_run_form import editor_config, post_run
from web import schema_form as sf

pytestmark = pytest.mark.django_db

LONG = ";".join(f"acc://demo/data/part-{i:03d}.csv:/code/in/part-{i:03d}.csv" for i in range(12))
DEFAULTS = {
    "A": "1",
    "input_mappings": LONG,
    "output_mappings": "/code/out/:acc://demo/results/",
    "interactive_socket": "0.0.0.0:8787",
}


def test_the_key_value_editor_leaves_out_the_routines_settings_and_the_page_lists_them_in_full(
    signed_in, project, alice
):
    routine = make_routine(project, alice, name="plain", schema=None, conf=DEFAULTS)
    response = signed_in(alice).get(f"/routines/{routine.pk}/")
    config = editor_config(response)
    assert config["startval"]["conf"] == [{"name": "A", "value": "1"}], "no internal key as an ordinary row"
    assert config["schema"]["properties"]["conf"]["items"]["properties"]["value"]["format"] == "textarea"
    box = response.content.decode().split('id="set-by-routine"')[1].split("</section>")[0]
    assert "Set by the routine" in box
    assert "Output mappings" in box and "/code/out/:acc://demo/results/" in box
    assert "Interactive socket" in box and "0.0.0.0:8787" in box
    assert LONG in box, "the value is shown whole, not truncated"


def test_a_routine_with_a_schema_lists_its_settings_too(signed_in, routine, alice):
    text = signed_in(alice).get(f"/routines/{routine.pk}/").content.decode()
    assert 'id="set-by-routine"' in text and "/code/out/:acc://demo/out/" in text


def test_a_routine_without_settings_shows_no_such_box(signed_in, project, alice):
    routine = make_routine(project, alice, name="bare", schema=None, conf={"A": "1"})
    assert 'id="set-by-routine"' not in signed_in(alice).get(f"/routines/{routine.pk}/").content.decode()


def test_the_job_keeps_the_routines_settings_and_a_row_naming_one_is_refused(signed_in, project, alice):
    routine = make_routine(project, alice, name="plain", schema=None, conf=DEFAULTS)
    client = signed_in(alice)
    assert post_run(client, routine, {"conf": [{"name": "A", "value": "2"}], "secrets": []}).status_code == 302
    job = Job.objects.get()
    assert job.conf["A"] == "2" and job.conf["output_mappings"] == DEFAULTS["output_mappings"]
    assert job.conf["input_mappings"] == LONG and job.conf["interactive_socket"] == "0.0.0.0:8787"

    override = {"conf": [{"name": "output_mappings", "value": "/etc/:acc://demo/x/"}], "secrets": []}
    response = post_run(client, routine, override)
    assert response.status_code == 400
    assert "set by the routine" in editor_config(response)["errors"]["root.conf.0.name"][0]
    assert Job.objects.count() == 1


def test_routine_settings_reads_only_the_platforms_keys():
    assert sf.routine_settings({"A": "1", "output_mappings": "/o/:acc://p/o/", "interactive_prefix": ""}) == [
        {"name": "output_mappings", "label": "Output mappings", "value": "/o/:acc://p/o/"}
    ]
    assert sf.routine_settings(None) == []

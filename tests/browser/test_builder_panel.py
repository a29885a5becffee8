"""The builder's node panel: an input chosen in the project file picker (browse folders, choose a file and a
folder, change the container path) and a conf override typed in the form generated from the routine's schema;
the run gets both."""

import io
import re
import uuid

import pytest
from playwright.sync_api import expect

from files import services as files
from jobflows.models import Jobflow
from routines import services as routine_services
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import wait_for_status

pytestmark = pytest.mark.browser

SCHEMA = {
    "type": "object",
    "properties": {
        "GREETING": {"type": "string", "title": "Greeting", "default": "hello"},
        "COUNT": {"type": "integer", "title": "Count", "minimum": 1, "description": "How many times."},
    },
    "required": ["COUNT"],
}


def test_a_nodes_input_comes_from_the_picker_and_its_conf_from_the_schema_form(tab, start_worker, project, alice, api):
    start_worker("local")
    files.write_file(project=project, relpath="data/table.csv", stream=io.BytesIO(b"alpha,1\n"))
    files.write_file(project=project, relpath="data/parts/p1.txt", stream=io.BytesIO(b"part one\n"))
    nonce = uuid.uuid4().hex[:8]
    command = f'echo "{nonce} $GREETING x$COUNT"; cat /code/table.csv; cat /code/inputs/data/parts/p1.txt'
    task = {
        "name": "report",
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": command, "conf": {"COUNT": "2"}},
        "conf_schema": SCHEMA,
        "timeout": 60,
    }
    routine = routine_services.save_routine(project=project, user=alice, task=task)
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto("/projects/demo/jobflows/new/")
    page.get_by_label("Routine to add").select_option(f"{routine.pk}:1")
    page.get_by_role("button", name="Add node").click()
    expect(page.locator("#panel-title")).to_have_text("Node report")

    # the conf override is the routine's schema as a form, filled with what the routine gives anyway
    greeting, count = page.get_by_label("Greeting"), page.get_by_label("Count")
    expect(greeting).to_have_value("hello")
    expect(count).to_have_value("2")
    expect(page.locator("#conf-editor")).to_contain_text("How many times.")
    count.fill("0")
    greeting.focus()
    expect(page.locator("#conf-editor")).to_contain_text("at least 1")  # the form marks it at once
    count.fill("7")
    greeting.fill("bonjour")

    # the picker: browse into a folder with the keyboard, back with the breadcrumbs, choose a file and a folder
    page.get_by_role("button", name="Choose project files…").click()
    dialog = page.get_by_role("dialog", name="Choose project files")
    expect(dialog).to_be_visible()
    dialog.get_by_role("link", name="data/").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#picker-crumbs")).to_have_text("demo / data")
    first = dialog.get_by_role("checkbox", name="Select data/parts")  # folders first; focus moved into the list
    expect(first).to_be_focused()
    page.keyboard.press("Space")
    expect(first).to_be_checked()
    dialog.get_by_role("link", name="parts/").click()
    expect(dialog.get_by_text("p1.txt")).to_be_visible()
    page.locator("#picker-crumbs").get_by_role("link", name="data").click()
    expect(dialog.get_by_role("checkbox", name="Select data/parts")).to_be_visible()
    dialog.get_by_role("checkbox", name="Select data/table.csv").check()
    dialog.get_by_role("checkbox", name="Select data/parts").check()
    dialog.get_by_role("button", name="Add selected").click()
    expect(dialog).to_be_hidden()

    target = page.get_by_label("Container path for acc://demo/data/table.csv")
    expect(target).to_be_focused()
    expect(target).to_have_value("/code/inputs/data/table.csv")
    expect(page.get_by_label("Container path for acc://demo/data/parts/")).to_have_value("/code/inputs/data/parts/")
    target.fill("/code/table.csv")
    page.get_by_label("Jobflow name").fill("report flow")
    screenshot(page, "builder-node-panel.png")
    page.get_by_role("button", name="Save jobflow").click()
    expect(page.get_by_role("heading", name=re.compile("^report flow"))).to_be_visible()

    node = Jobflow.objects.get(name="report flow").latest_version.definition["nodes"][0]
    assert node["conf"] == {"GREETING": "bonjour", "COUNT": "7"}
    assert sorted(node["inputs"]) == [
        "acc://demo/data/parts/:/code/inputs/data/parts/",
        "acc://demo/data/table.csv:/code/table.csv",
    ]

    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    root_id = int(re.search(r"/jobs/(\d+)/$", page.url).group(1))
    assert wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=120).status == "SUCCEEDED"
    job_id = api(alice).get(f"/api/v1/jobs/{root_id}/").json()["nodes"][0]["id"]
    job = api(alice).get(f"/api/v1/jobs/{job_id}/").json()
    assert job["conf"]["GREETING"] == "bonjour" and job["conf"]["COUNT"] == "7"
    assert "acc://demo/data/table.csv:/code/table.csv" in job["conf"]["input_mappings"]
    log = "".join(c["text"] for c in api(alice).get(f"/api/v1/jobs/{job_id}/logs/").json()["chunks"])
    assert f"{nonce} bonjour x7" in log and "alpha,1" in log and "part one" in log, log

    # editing the saved jobflow shows the override in the form again
    page.goto(f"/jobflows/{Jobflow.objects.get(name='report flow').pk}/edit/")
    page.get_by_label("Node to edit").select_option("report")
    expect(page.get_by_label("Count")).to_have_value("7")
    expect(page.get_by_label("Greeting")).to_have_value("bonjour")


def test_a_routine_without_a_schema_keeps_the_key_value_editor(tab, project, alice):
    task = {
        "name": "plain",
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": "echo $WHO", "conf": {"WHO": "world"}},
    }
    routine = routine_services.save_routine(project=project, user=alice, task=task)
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto("/projects/demo/jobflows/new/")
    page.get_by_label("Routine to add").select_option(f"{routine.pk}:1")
    page.get_by_role("button", name="Add node").click()
    expect(page.locator("#conf-editor")).to_be_hidden()
    who = page.get_by_label("WHO")
    expect(who).to_have_attribute("placeholder", "default: world")
    who.fill("you")
    page.get_by_label("New variable").fill("LOUD")
    page.get_by_label("Value", exact=True).fill("yes")
    page.get_by_role("button", name="Add variable").click()
    expect(page.get_by_label("LOUD")).to_have_value("yes")
    page.get_by_label("Jobflow name").fill("plain flow")
    page.get_by_role("button", name="Save jobflow").click()
    expect(page.get_by_role("heading", name=re.compile("^plain flow"))).to_be_visible()
    node = Jobflow.objects.get(name="plain flow").latest_version.definition["nodes"][0]
    assert node["conf"] == {"WHO": "you", "LOUD": "yes"}

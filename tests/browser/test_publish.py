"""Publishing from a routine's page with the schema editor's live preview and the input and output tables; a bad
row is refused next to its field and nothing is saved; Manage starts from the model's own rows."""

import re

import pytest
from playwright.sync_api import expect

from hosting.models import HostedModel
from tests.browser.conftest import screenshot, sign_in
from tests.hosting.conftest import square_routine

pytestmark = pytest.mark.browser


def test_publish_a_routine_from_its_page_with_the_schema_editor_and_tables(tab, project, alice):
    routine = square_routine(project, alice)
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto(f"/routines/{routine.pk}/")
    page.get_by_role("link", name="Publish as hosted model").click()
    page.wait_for_url(re.compile(rf"/hosted/new/\?routine={routine.pk}$"))
    expect(page.locator("#publish-routine")).to_have_value(str(routine.pk))
    expect(page.locator("#publish-slug")).to_have_value("square")

    # the routine's schema in the editor, and the form it generates, live
    preview = page.locator("#publish-conf-preview")
    expect(preview).to_have_attribute("data-ready", "1")
    expect(preview.locator('[name="root[n]"]')).to_be_visible()
    expect(page.get_by_label("Parameters: JSON Schema of the launch form")).to_be_attached()
    page.locator("#publish-conf-field .CodeMirror").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("oops")
    expect(page.locator("#publish-conf-schema-error")).to_contain_text("Line")
    for _ in range(4):
        page.keyboard.press("Backspace")
    expect(page.locator("#publish-conf-schema-error")).to_have_text("")
    expect(preview.locator('[name="root[n]"]')).to_be_visible()

    # secrets: a schema of their own, previewed as the form launchers fill
    expect(page.get_by_label("Secrets each launcher supplies (optional)")).to_be_attached()
    page.locator("#publish-secrets-field .CodeMirror").click()
    page.keyboard.type('{"type": "object", "properties": {"API_TOKEN": {"type": "string", "title": "API token"}}}')
    expect(page.locator("#publish-secrets-preview")).to_contain_text("API token")

    # inputs and outputs as tables
    inputs = page.get_by_role("table", name="Inputs the launcher provides")
    expect(inputs.get_by_role("row")).to_have_count(1)  # the header only
    page.get_by_role("button", name="Add an input").click()
    page.get_by_label("Name of input 1").fill("data")
    page.get_by_label("Title of input 1").fill("Your data")
    page.get_by_label("Target in the container of input 1").fill("/code/in/data.csv")
    page.get_by_role("button", name="Add an input").click()
    page.get_by_label("Name of input 2").fill("extra")
    page.get_by_label("Kind of input 2").select_option("folder")
    page.get_by_label("Required of input 2").uncheck()
    page.get_by_label("Target in the container of input 2").fill("/code/in/extra/")
    page.get_by_role("button", name="Add an output").click()
    page.get_by_label("Path in the container of output 1").fill("/code/out/")
    page.get_by_label("Name of output 1").fill("results")

    # a row that breaks the rules is refused by the server next to the field, and nothing is saved
    page.get_by_label("Target in the container of input 2").fill("relative/path")
    page.fill("#publish-title", "Square a number")
    page.click("#publish-button")
    expect(page.locator("#publish-inputs-field")).to_contain_text("absolute")
    assert not HostedModel.objects.exists()
    # the table shows what was posted; fix the row, remove the other one, publish
    page.get_by_label("Target in the container of input 2").fill("/code/in/extra/")
    page.get_by_role("button", name="Remove input 1").click()
    expect(page.get_by_label("Name of input 1")).to_have_value("extra")
    screenshot(page, "publish.png")
    page.click("#publish-button")
    page.wait_for_url("**/hosted/square/")

    version = HostedModel.objects.get(slug="square").default_version
    assert version.inputs_schema == [
        {
            "name": "extra",
            "title": "extra",
            "description": "",
            "kind": "folder",
            "required": False,
            "target": "/code/in/extra/",
        }
    ]
    assert version.outputs == [{"path": "/code/out/", "name": "results"}]
    assert list(version.secrets_schema["properties"]) == ["API_TOKEN"]
    assert version.conf_schema["required"] == ["n"]

    # Manage starts from the model's rows; the embed snippet waits for an embed origin
    page.goto("/hosted/square/manage/")
    expect(page.get_by_label("Name of input 1")).to_have_value("extra")
    expect(page.get_by_label("Path in the container of output 1")).to_have_value("/code/out/")
    expect(page.locator("#version-conf-preview [name='root[n]']")).to_be_visible()
    expect(page.locator("#widget-snippet")).to_have_count(0)
    expect(page.locator("#no-embed")).to_be_visible()
    page.get_by_role("button", name="Remove output 1").click()
    page.fill("#version-notes", "no outputs")
    page.click("#new-version-button")
    expect(page.locator("#messages")).to_contain_text("Published version 2")
    assert HostedModel.objects.get(slug="square").default_version.outputs == []
    page.fill("#edit-origins", "https://portal.example.org")
    page.click("#edit-button")
    expect(page.locator("#widget-snippet")).to_have_value(re.compile(r'^<iframe src="[^"]*/hosted/square/widget/"'))

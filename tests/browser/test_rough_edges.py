"""Issue 16's rough edges, as a person sees them: the live marker, the file icon, the site's 404 page and favicon,
the Run form's routine settings and a Markdown description."""

import io
import re

import pytest
from playwright.sync_api import expect

from files import services as files
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import wait_for_status
from tests.web.conftest import make_routine
from workers import dispatch

pytestmark = pytest.mark.browser


def test_the_live_marker_leaves_once_the_job_is_over_and_is_absent_after_the_end(tab, start_worker, project, alice):
    start_worker("local")
    routine = make_routine(
        project, alice, name="ticks", schema=None, command="for i in 1 2 3; do echo t$i; sleep 1; done"
    )
    page = tab
    sign_in(page, "alice", "alice-pass-123")

    running = dispatch.run_routine(routine=routine, user=alice, conf={})
    page.goto(f"/jobs/{running.pk}/")
    marker = page.locator("#live-state")
    expect(marker).to_be_visible()
    expect(marker).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED", timeout=60_000)
    expect(marker).to_be_hidden()

    page.reload()
    expect(page.locator("#log")).to_contain_text("t3")
    expect(marker).to_be_hidden()
    assert page.evaluate("document.getElementById('live-state').hasAttribute('hidden')"), "hidden from the start"


def test_a_jobflow_runs_live_marker_leaves_once_the_run_is_over(tab, start_worker, project, alice, api):
    start_worker("local")

    def node(key):
        return {"id": key, "name": key, "timeout": 60, "job_kwargs": {"docker_image": "busybox", "command": "sleep 1"}}

    body = {"format": "acc-dag/1", "name": "two", "nodes": [node("a"), node("b")], "edges": [["a", "b"]]}
    root_id = api(alice).post("/api/v1/aterm-cli/demo/jobs/dispatch/", body, format="json").json()["job_id"]
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto(f"/jobs/{root_id}/")
    wait_for_status(root_id, {"SUCCEEDED"}, timeout=90)
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED", timeout=30_000)
    expect(page.locator("#live-state")).to_be_hidden()
    page.reload()
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED")
    expect(page.locator("#live-state")).to_be_hidden()


def test_the_explorers_file_icon_is_a_page_not_a_second_checkbox(tab, project, alice):
    files.write_file(project=project, relpath="notes.txt", stream=io.BytesIO(b"hi\n"))
    page = tab
    icons = []
    page.on("response", lambda r: icons.append(r.status) if r.url.endswith("/img/icon-file.svg") else None)
    sign_in(page, "alice", "alice-pass-123")
    page.goto("/projects/demo/files/")
    icon = page.locator('#entries tr[data-path="notes.txt"] .icon-file')
    expect(icon).to_be_visible()
    style = icon.evaluate(
        "el => { const s = getComputedStyle(el); return [s.backgroundImage, s.borderTopWidth, s.borderTopStyle]; }"
    )
    assert "icon-file.svg" in style[0], "drawn as a page with a folded corner"
    assert style[1] == "0px" or style[2] == "none", "no box outline like the checkbox next to it"
    page.wait_for_load_state("networkidle")
    assert icons and icons[-1] == 200


def test_an_unknown_address_shows_the_sites_404_page_and_the_favicon_loads(tab, alice):
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    response = page.goto("/jobs/not-a-number/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("summary[aria-label='User menu']")).to_be_visible()
    expect(page.get_by_role("link", name="your jobs")).to_have_attribute("href", "/jobs/")
    icon = page.request.get("/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"
    linked = page.locator("link[rel=icon][type='image/svg+xml']").get_attribute("href")
    assert page.request.get(linked).status == 200


def test_the_run_form_shows_the_routines_settings_apart_and_a_markdown_description(tab, project, alice):
    long_mappings = ";".join(f"acc://demo/data/part-{i:02d}.csv:/code/in/part-{i:02d}.csv" for i in range(8))
    routine = make_routine(
        project,
        alice,
        name="mapped",
        schema=None,
        conf={"A": "1", "input_mappings": long_mappings, "output_mappings": "/code/out/:acc://demo/results/"},
    )
    routine.description = "Counts `lines` in *every* file."
    routine.save(update_fields=["description"])
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto(f"/routines/{routine.pk}/")
    expect(page.locator("#description code")).to_have_text("lines")
    expect(page.locator("#description em")).to_have_text("every")

    settings = page.get_by_role("region", name="Set by the routine")
    expect(settings).to_contain_text("Output mappings")
    shown = settings.locator('[data-setting="input_mappings"]')
    expect(shown).to_have_text(long_mappings)
    box = shown.bounding_box()
    assert box["x"] + box["width"] <= page.viewport_size["width"], "the whole value is on the page"

    expect(page.locator("#conf-editor[data-ready]")).to_be_attached()
    names = page.locator('#conf-editor [data-schemapath^="root.conf."] input[name$="[name]"]')
    expect(names).to_have_count(1)
    assert names.first.input_value() == "A", "no internal key among the editable rows"
    value = page.locator('#conf-editor [name="root[conf][0][value]"]')
    assert value.evaluate("el => el.tagName") == "TEXTAREA", "a long value is shown whole"
    screenshot(page, "run-form-settings.png")
    page.click("#run-button")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))

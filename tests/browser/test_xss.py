"""Stored XSS: every place a page shows text a user wrote gets markup that would run script, and the page shows
that text literally: no dialog opens, `window.__xss` stays unset, no injected element appears, and the browser
reports no Content-Security-Policy violation (the `tab` fixture fails on one).

The data is written directly (services and the ORM); the job is a stored one with log chunks, no worker runs."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from files import services as files
from hosting.models import HostedModel
from jobs.models import Job, LogChunk
from routines.models import Project, Routine
from tests.browser.conftest import sign_in
from tests.hosting.conftest import publish
from tests.web.conftest import make_routine

pytestmark = pytest.mark.browser

RUN = "window.__xss=1;alert(1)"


def bad(label: str) -> str:
    """Markup that runs script wherever it is parsed as HTML; `label` tells the places apart."""
    return f'{label} <img src=x onerror="{RUN}"> <script>{RUN}</script> "><svg onload="{RUN}">'


def bad_name(label: str) -> str:
    """The same for a file name (no '/')."""
    return f'{label} <img src=x onerror="{RUN}"> "><svg onload="{RUN}">'


INJECTED = "[onerror], [onload], img[src='x'], svg, iframe, script:not([src]):not([type='application/json'])"


@pytest.fixture
def dialogs(tab):
    opened = []

    def on_dialog(dialog):
        opened.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    return opened


def assert_inert(page, dialogs) -> None:
    """Nothing a user wrote became markup: no dialog, no script ran, no element of theirs in the page."""
    page.wait_for_load_state("networkidle")  # an injected image's error (and its handler) comes after a request
    assert dialogs == []
    assert page.evaluate("window.__xss") is None, f"script ran on {page.url}"
    injected = page.locator(INJECTED)
    assert injected.count() == 0, injected.evaluate_all("els => els.map(e => e.outerHTML)")


def schema_with_payloads(prefix: str) -> dict:
    return {
        "type": "object",
        "title": bad(f"{prefix}-form-title"),
        "description": bad(f"{prefix}-form-description"),
        "properties": {
            "WHO": {
                "type": "string",
                "title": bad(f"{prefix}-title"),
                "description": bad(f"{prefix}-description"),
                "default": bad(f"{prefix}-default"),
            },
            "MODE": {
                "type": "string",
                "title": "Mode",
                "enum": ["a", "b"],
                "options": {"enum_titles": [bad(f"{prefix}-enum-a"), bad(f"{prefix}-enum-b")]},
            },
            "SHAPE": {
                "type": "object",
                "title": "Shape",
                "enum": [{bad(f"{prefix}-enum-key"): bad(f"{prefix}-enum-value")}],
            },
            "FLAG": {"type": "boolean", "format": "checkbox", "title": bad(f"{prefix}-checkbox")},
        },
    }


def assert_form_shows_literally(page, prefix: str) -> None:
    editor = page.locator("#conf-editor")
    expect(page.locator("#conf-editor[data-ready]")).to_be_attached()
    for part in ("title", "description", "checkbox", "form-title", "form-description"):
        expect(editor).to_contain_text(bad(f"{prefix}-{part}"))
    expect(page.locator('[name="root[WHO]"]')).to_have_value(bad(f"{prefix}-default"))
    expect(editor.locator("option", has_text=bad(f"{prefix}-enum-a"))).to_have_count(1)
    expect(editor).to_contain_text(bad(f"{prefix}-enum-key"))


def test_names_descriptions_conf_values_file_names_and_log_lines_are_shown_as_text(tab, dialogs, project, alice):
    Project.objects.filter(pk=project.pk).update(name=bad("project-name"), description=bad("project-description"))
    plain = make_routine(project, alice, name="plain", schema=None, conf={"WHO": bad("conf-value")})
    Routine.objects.filter(pk=plain.pk).update(name=bad("routine-name"), description=bad("routine-description"))
    schema_routine = make_routine(project, alice, name="with-schema", schema=schema_with_payloads("routine"))
    now = timezone.now()
    job = Job.objects.create(
        project=project,
        routine_version=plain.latest_version,
        user=alice,
        name=bad("job-name"),
        status="FAILED",
        message=bad("job-message"),
        created_at=now,
        finished_at=now,
    )
    LogChunk.objects.create(job=job, seq=1, text=bad("log-line") + "\n[ERROR] " + bad("log-error") + "\n")
    folder = bad_name("folder-name")
    files.write_file(project=project, relpath=f"{folder}/{bad_name('file-name')}", stream=io.BytesIO(b"x"))
    files.write_file(project=project, relpath=bad_name("top-file"), stream=io.BytesIO(b"x"))

    page = tab
    sign_in(page, "alice", "alice-pass-123")

    page.goto("/projects/demo/")
    expect(page.locator("h1")).to_contain_text(bad("project-name"))
    expect(page.locator(".pagehead")).to_contain_text(bad("project-description"))
    expect(page.locator("#routines")).to_contain_text(bad("routine-name"))
    expect(page.locator("#recent")).to_contain_text(bad("job-name"))
    expect(page.locator("#project-switcher")).to_contain_text(bad("project-name"))
    assert_inert(page, dialogs)

    page.goto(f"/routines/{plain.pk}/")  # no schema: the key/value editor holds the routine's conf
    expect(page.locator("h1")).to_have_text(bad("routine-name"))
    expect(page.locator(".pagehead")).to_contain_text(bad("routine-description"))
    expect(page.locator("#conf-editor[data-ready]")).to_be_attached()
    expect(page.locator('[name="root[conf][0][value]"]')).to_have_value(bad("conf-value"))
    assert_inert(page, dialogs)

    page.goto(f"/routines/{schema_routine.pk}/")
    assert_form_shows_literally(page, "routine")
    assert_inert(page, dialogs)

    page.goto(f"/jobs/{job.pk}/")
    expect(page.locator("#log")).to_contain_text(bad("log-error"))
    expect(page.locator("#log .log-line").first).to_have_text(bad("log-line"))
    expect(page.locator("h1")).to_contain_text(bad("job-name"))
    expect(page.locator("body")).to_contain_text(bad("job-message"))
    assert_inert(page, dialogs)

    page.goto("/jobs/")
    expect(page.locator("main")).to_contain_text(bad("job-name"))
    assert_inert(page, dialogs)

    page.goto("/projects/demo/files/")
    expect(page.locator("#entries")).to_contain_text(bad_name("folder-name") + "/")
    expect(page.locator("#entries")).to_contain_text(bad_name("top-file"))
    page.locator("#entries a", has_text=bad_name("folder-name")).click()
    expect(page.locator("#entries")).to_contain_text(bad_name("file-name"))
    assert_inert(page, dialogs)


def test_a_hosted_models_texts_and_schema_are_shown_as_text_on_its_page_widget_and_catalog(
    tab, dialogs, project, alice
):
    routine = make_routine(project, alice, name="square", schema=None)
    description = (
        "Squares **n**. "
        + bad("markdown")
        + '\n\n[a link](javascript:window.__xss=1) <a href="javascript:window.__xss=1">raw</a>'
        + '\n\n<p style="color:red" onclick="window.__xss=1">styled</p>'
    )
    model = publish(
        alice,
        routine,
        slug="square",
        title=bad("model-title"),
        description=description,
        conf_schema=schema_with_payloads("hosted"),
        inputs_schema=[
            {
                "name": "data",
                "title": bad("input-title"),
                "description": bad("input-description"),
                "kind": "file",
                "required": False,
                "target": "/code/in/data.txt",
            }
        ],
        secrets_schema={
            "type": "object",
            "properties": {"API_TOKEN": {"type": "string", "title": bad("secret-title")}},
        },
    )
    HostedModel.objects.filter(pk=model.pk).update(tags=[bad("tag")])

    page = tab
    sign_in(page, "alice", "alice-pass-123")

    page.goto("/hosted/square/")
    expect(page.locator("h1")).to_contain_text(bad("model-title"))
    expect(page.locator(".pagehead .tag")).to_have_text(bad("tag"))
    expect(page.locator("#description strong")).to_have_text("n")
    expect(page.locator("#description")).to_contain_text(bad("markdown"))
    expect(page.locator("#description a[href^='javascript']")).to_have_count(0)
    expect(page.locator("#description [style]")).to_have_count(0)
    expect(page.locator("#inputs")).to_contain_text(bad("input-title"))
    expect(page.locator("#inputs")).to_contain_text(bad("input-description"))
    expect(page.locator("#secrets")).to_contain_text(bad("secret-title"))
    assert_form_shows_literally(page, "hosted")
    assert_inert(page, dialogs)

    page.goto("/hosted/square/widget/")
    expect(page.locator("h1")).to_have_text(bad("model-title"))
    assert_form_shows_literally(page, "hosted")
    assert_inert(page, dialogs)

    page.goto("/hosted/")
    expect(page.locator("#models")).to_contain_text(bad("model-title"))
    expect(page.locator("#models .tag")).to_have_text(bad("tag"))
    assert_inert(page, dialogs)

    page.goto("/hosted/square/manage/")
    expect(page.locator("h1")).to_contain_text(bad("model-title"))
    assert_inert(page, dialogs)

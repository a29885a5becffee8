"""Browser tests: authoring in the web client as a person does it, controls found by label and role.

1 create a project and add a viewer, who sees it without a New routine button; 2 a routine from a container
image with a conf schema, its live preview, run from its page on the local backend; 3 a routine from an
uploaded folder with a Dockerfile (the progress bar moves), run on docker, edited into version 2, the diff
shows the command; 4 an interactive routine (interactive_socket in Advanced) whose session opens from the job
page; 7 bad input on each form: the message at the field, nothing saved.
"""

from __future__ import annotations

import json
import re
import secrets

import pytest
from playwright.sync_api import expect

from jobs.models import Job
from routines.models import Membership, Project, Role, Routine
from tests.browser.conftest import screenshot, sign_in, watch_csp
from tests.conftest import wait_for_status
from tests.interactive.conftest import log_of

pytestmark = pytest.mark.browser

SCHEMA = {
    "type": "object",
    "properties": {"COUNT": {"type": "integer", "title": "How many", "minimum": 1}},
    "required": ["COUNT"],
}


def new_context(browser, url):
    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    watch_csp(page)
    return context, page


def write_schema(page, text: str) -> None:
    """Type into the schema editor (CodeMirror) as a person pasting: its input is named by the label."""
    editor = page.get_by_label("Conf schema")
    editor.focus()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def job_id_of(page) -> int:
    # the run form answers after the dispatch; on a slow, loaded 2-CPU machine that once took over 30 s
    page.wait_for_url(re.compile(r"/jobs/\d+/$"), timeout=90_000)
    return int(re.search(r"/jobs/(\d+)/$", page.url).group(1))


def test_create_a_project_and_add_a_viewer_who_cannot_author(tab, browser, web_server, alice, charlie):
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto("/")
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Slug").fill("climate")
    page.get_by_label("Name", exact=True).fill("Climate study")
    page.get_by_label("Description").fill("Models of rain.")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Climate study")
    expect(page.get_by_role("link", name="New routine")).to_be_visible()

    page.get_by_role("link", name="Members", exact=True).click()
    page.get_by_label("Username").fill("charlie")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#member-list")).to_contain_text("charlie")
    assert Membership.objects.get(project__slug="climate", user=charlie).role == Role.VIEWER

    context, other = new_context(browser, web_server.url)
    sign_in(other, "charlie", "charlie-pass-123")
    other.goto("/")
    other.get_by_role("link", name="climate").click()
    expect(other.get_by_role("heading", level=1)).to_contain_text("Climate study")
    expect(other.get_by_role("main").get_by_role("link", name="Files")).to_be_visible()
    expect(other.get_by_role("link", name="New routine")).to_have_count(0)
    other.get_by_role("link", name="Members", exact=True).click()
    expect(other.get_by_role("button", name="Add member")).to_have_count(0)
    expect(other.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    assert not other.csp_violations
    context.close()


def test_a_routine_from_an_image_with_a_schema_previews_its_form_and_runs(tab, start_worker, project, alice):
    start_worker("local")
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto("/projects/demo/")
    page.get_by_role("link", name="New routine").click()
    page.get_by_label("Name", exact=True).fill("counter")
    page.get_by_label("Description").fill("Counts to `COUNT`.")
    expect(page.get_by_label("A container image")).to_be_checked()
    page.get_by_label("Container image", exact=True).fill("acc-test/busybox:latest")
    page.get_by_label("None: everything is in the image").check()
    page.get_by_label("Command", exact=True).fill('echo "$GREETING, counted to $COUNT"')
    page.get_by_role("button", name="Add a conf row").click()
    page.get_by_label("Conf name 1").fill("GREETING")
    page.get_by_label("Conf value 1").fill("hello")
    page.get_by_role("button", name="Add a conf row").click()
    page.get_by_label("Conf name 2").fill("UNUSED")
    page.get_by_role("button", name="Remove conf row 2").click()
    expect(page.get_by_label("Conf name 2")).to_have_count(0)
    page.get_by_label("Cores").fill("0.5")
    page.get_by_label("Memory", exact=True).fill("128")
    page.get_by_label("Timeout", exact=True).fill("5")

    write_schema(page, '{"type": "object",\n  "properties": {\n    "COUNT": {"type": "integer"\n}')
    expect(page.locator("#schema-error")).to_contain_text("Line 4")  # a missing brace, said with its line
    write_schema(page, json.dumps(SCHEMA, indent=2))
    expect(page.locator("#schema-error")).to_have_text("")
    preview = page.locator("#schema-preview")
    expect(preview.locator("[data-ready]")).to_have_count(0)
    expect(page.locator("#schema-preview[data-ready='1']")).to_be_attached()
    expect(preview.locator('input[name="root[COUNT]"]')).to_be_visible()
    expect(preview).to_contain_text("How many")
    screenshot(page, "routine-editor.png")

    page.get_by_role("button", name="Create routine").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("counter")
    routine = Routine.objects.get(project=project, name="counter")
    spec = routine.latest_version.spec
    assert spec["conf_schema"] == SCHEMA
    assert spec["conf"] == {"GREETING": "hello"}
    assert spec["resources"] == {"required_cores": 0.5, "required_ram": 128 * 2**20, "timeout": 300}

    expect(page.locator("#conf-editor[data-ready]")).to_be_attached()
    page.fill('[name="root[COUNT]"]', "4")
    page.get_by_role("button", name="Run", exact=True).click()
    job_id = job_id_of(page)
    wait_for_status(job_id, "SUCCEEDED", timeout=120)
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED", timeout=30_000)
    expect(page.locator("#log")).to_contain_text("hello, counted to 4")
    expect(page.get_by_role("link", name="v1")).to_have_attribute("href", f"/routines/{routine.pk}/versions/1/")


@pytest.fixture
def docker_pages(monkeypatch, settings, docker_client):
    """Pages and workers on the docker backend: set before the web server starts (it reads the environment)."""
    monkeypatch.setenv("ACC_BACKEND", "docker")
    settings.ACC_BACKEND = "docker"


@pytest.fixture
def job_folder(tmp_path):
    """A folder of a few MB with a Dockerfile; a nonce makes its image new on every run."""
    folder = tmp_path / "tool"
    (folder / "data").mkdir(parents=True)
    nonce = secrets.token_hex(16)  # every file is new to the jobstore, which outlives a test's project
    (folder / "Dockerfile").write_text(
        f"FROM acc-test/busybox:latest\nRUN echo building {nonce}\nCOPY . /code\nWORKDIR /code\n"
    )
    (folder / "nonce.txt").write_text(nonce)
    for n in range(6):
        (folder / "data" / f"chunk{n}.bin").write_bytes(secrets.token_bytes(1024 * 1024))
    return folder


WATCH_PROGRESS = """() => {
  window.progressSeen = [];
  const bar = document.getElementById("upload-progress");
  new MutationObserver(() => window.progressSeen.push([bar.value, bar.max]))
    .observe(bar, { attributes: true, attributeFilter: ["value", "max"] });
}"""


def test_a_routine_from_an_uploaded_folder_runs_on_docker_and_an_edit_makes_version_2(
    docker_pages, tab, start_worker, project, alice, job_folder, docker_client
):
    start_worker("docker")
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto("/projects/demo/routines/new/")
    page.get_by_label("Name", exact=True).fill("from-folder")
    page.get_by_label("A Dockerfile inside the code folder").check()
    expect(page.get_by_label("Dockerfile path")).to_have_value("Dockerfile")
    page.get_by_label("Upload a folder").check()
    page.evaluate(WATCH_PROGRESS)
    page.get_by_label("Folder", exact=True).set_input_files(job_folder)
    status = page.locator("#upload-status")
    expect(status).to_contain_text("Uploaded: 0 of 8 files already stored", timeout=60_000)
    seen = page.evaluate("window.progressSeen")
    values = {round(v / m, 3) for v, m in seen if m > 1}
    assert len([v for v in values if 0 < v < 1]) >= 1 and 1 in values, f"the bar moved through {seen}"
    page.get_by_label("Command", exact=True).fill("ls data && echo version-one")
    page.get_by_role("button", name="Create routine").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("from-folder")
    routine = Routine.objects.get(project=project, name="from-folder")
    assert routine.latest_version.spec["code"]["url"].startswith("s3accjobstore://manifest_")

    page.get_by_role("button", name="Run", exact=True).click()
    job_id = job_id_of(page)
    job = wait_for_status(job_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=240)
    assert job.status == "SUCCEEDED", (job.message, job.operator_message, log_of(job_id))
    expect(page.locator("#log")).to_contain_text("version-one", timeout=30_000)

    page.goto(f"/routines/{routine.pk}/")
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.locator("#upload-status")).to_contain_text("Current code: s3accjobstore://manifest_")
    page.get_by_label("Command", exact=True).fill("ls data && echo version-two")
    page.get_by_role("button", name="Save a new version").click()
    expect(page.locator("#saved-notice")).to_have_text("Saved as version 2.")
    page.get_by_role("button", name="Show changes").click()
    command = page.locator('.diff-section[data-field="command"]')
    expect(command).to_contain_text("- ls data && echo version-one")
    expect(command).to_contain_text("+ ls data && echo version-two")
    expect(page.locator(".diff-section")).to_have_count(1)
    screenshot(page, "routine-versions.png")

    # the same folder again: every file is already stored, nothing is sent
    page.goto(f"/routines/{routine.pk}/edit/")
    page.get_by_label("Folder", exact=True).set_input_files(job_folder)
    expect(page.locator("#upload-status")).to_contain_text("Uploaded: 8 of 8 files already stored", timeout=60_000)
    page.get_by_role("button", name="Save a new version").click()
    expect(page.locator("#saved-notice")).to_contain_text("Nothing changed")
    assert routine.versions.count() == 2


@pytest.fixture
def platform(monkeypatch, settings, docker_client, transactional_db, collected_static):
    from tests.interactive.conftest import Platform

    monkeypatch.setenv("ACC_BACKEND", "docker")
    settings.ACC_BACKEND = "docker"
    served = Platform()
    yield served
    served.stop()


def test_an_interactive_routine_made_in_the_editor_opens_its_session(browser, platform, start_worker, project, alice):
    start_worker("docker", extra_env=platform.env)
    context, page = new_context(browser, platform.url)
    sign_in(page, "alice", "alice-pass-123")
    page.goto("/projects/demo/routines/new/")
    page.get_by_label("Name", exact=True).fill("notebook")
    page.get_by_label("Container image", exact=True).fill("acc-test/python:latest")
    page.get_by_label("Command", exact=True).fill(
        "mkdir -p site && echo served-from-the-editor > site/index.html && exec python3 -m http.server 8787 -d site"
    )
    page.get_by_text("Advanced").click()
    page.get_by_label("Interactive socket").fill("0.0.0.0:8787")
    page.get_by_label("Timeout", exact=True).fill("10")
    page.get_by_role("button", name="Create routine").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("notebook")
    assert Routine.objects.get(name="notebook").latest_version.spec["conf"] == {"interactive_socket": "0.0.0.0:8787"}

    page.get_by_role("button", name="Run", exact=True).click()
    job_id = job_id_of(page)
    link = page.locator("#session-link")
    expect(link).to_be_visible(timeout=90_000)
    with page.expect_popup() as opened:
        link.click()
    session = opened.value
    expect(session.locator("body")).to_contain_text("served-from-the-editor")
    page.click("#session-stop")
    wait_for_status(job_id, {"SUCCEEDED", "CANCELLED"}, timeout=60)
    assert not page.csp_violations
    context.close()


def test_bad_input_on_each_form_shows_at_its_field_and_saves_nothing(tab, project, alice):
    page = tab
    sign_in(page, "alice", "alice-pass-123")

    page.goto("/projects/new/")
    page.get_by_label("Slug").fill("Not A Slug")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator('[data-for="slug"]')).to_contain_text("is not valid")
    expect(page.get_by_label("Slug")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Slug").fill("demo")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator('[data-for="slug"]')).to_contain_text("already exists")
    assert Project.objects.count() == 1

    page.goto("/projects/demo/members/")
    page.get_by_label("Username").fill("nobody")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator('[data-for="username"]')).to_contain_text("No active user named 'nobody'")
    page.get_by_label("Role of alice", exact=True).select_option("member")
    page.get_by_role("button", name="Change role of alice").click()
    expect(page.locator("#member-list")).to_contain_text("at least one owner")
    assert Membership.objects.get(project=project, user=alice).role == Role.OWNER

    page.goto("/projects/demo/routines/new/")
    page.get_by_label("Name", exact=True).fill("broken")
    page.get_by_label("Container image", exact=True).fill("not an image!")
    page.get_by_label("Memory", exact=True).fill("a lot")
    page.get_by_text("Advanced").click()
    page.get_by_label("Output mappings").fill("/code/out")
    page.get_by_role("button", name="Create routine").click()
    expect(page.locator('[data-for="memory"]')).to_contain_text("Memory must be a number")
    expect(page.get_by_label("Name", exact=True)).to_have_value("broken")  # what was typed stays
    page.get_by_label("Memory", exact=True).fill("64")
    page.get_by_role("button", name="Create routine").click()
    expect(page.locator('[data-for="command"]')).to_contain_text("command is required")
    page.get_by_label("Command", exact=True).fill("echo hi")
    page.get_by_role("button", name="Create routine").click()
    expect(page.locator('[data-for="docker_image"]')).to_contain_text("not a valid image reference")
    page.get_by_label("Container image", exact=True).fill("acc-test/busybox:latest")
    page.get_by_role("button", name="Create routine").click()
    expect(page.locator('[data-for="output_mappings"]')).to_contain_text("Output mapping")
    expect(page.get_by_label("Output mappings")).to_be_visible()  # the Advanced section opened at its error
    assert not Routine.objects.filter(name="broken").exists()
    assert not Job.objects.exists()


def test_the_authoring_pages_fit_a_phone(browser, web_server, project, alice):
    from tests.web.conftest import make_routine

    routine = make_routine(project, alice)
    context = browser.new_context(base_url=web_server.url, viewport={"width": 390, "height": 844})
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, "alice", "alice-pass-123")
    for url in [
        "/projects/new/",
        "/projects/demo/members/",
        "/projects/demo/routines/new/",
        f"/routines/{routine.pk}/edit/",
        f"/routines/{routine.pk}/versions/1/",
        f"/routines/{routine.pk}/sharing/",
    ]:
        page.goto(url)
        page.wait_for_load_state("load")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{url} is {overflow}px wider than the phone"
    context.close()

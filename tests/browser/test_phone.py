"""Issue 16, point 8: on a phone (390 × 844) the pages fit: nothing is cut off or overflows horizontally."""

import io

import pytest
from playwright.sync_api import expect

from files import services as files
from tests.browser.conftest import screenshot, sign_in, watch_csp
from tests.conftest import wait_for_status
from tests.web.conftest import make_routine
from workers import dispatch

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 390, 844


@pytest.fixture
def phone(browser, web_server):
    context = browser.new_context(
        base_url=web_server.url,
        viewport={"width": WIDTH, "height": HEIGHT},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
        locale="en-GB",
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    watch_csp(page)
    yield page
    refused = list(page.csp_violations)
    context.close()
    assert not refused, f"the browser refused something under the Content-Security-Policy: {refused}"


def assert_fits(page, what: str) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"{what}: the page is {widths[0]} px wide on a {widths[1]} px screen"


def assert_inside(page, locator, what: str) -> None:
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None, what
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, f"{what} is cut off: {box}"


def test_a_job_and_the_file_explorer_fit_a_phone(phone, start_worker, project, alice):
    start_worker("local")
    for name in ("a-rather-long-file-name-from-an-instrument-2026-12-03T17-55-00.csv", "b.csv"):
        files.write_file(project=project, relpath=f"data/{name}", stream=io.BytesIO(b"x,y\n1,2\n"))
    routine = make_routine(
        project,
        alice,
        name="phone-check",
        schema=None,
        command="echo a-long-line-without-spaces-$(seq -s- 1 60); mkdir -p out; echo done > out/result.txt",
        conf={"output_mappings": "/code/out/:acc://demo/results/phone/"},
    )
    job = dispatch.run_routine(routine=routine, user=alice, conf={"WHO": "someone with a long name"})
    wait_for_status(job.pk, {"SUCCEEDED"}, timeout=90)

    page = phone
    sign_in(page, "alice", "alice-pass-123")

    page.goto(f"/jobs/{job.pk}/")
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED")
    expect(page.locator("#log")).to_contain_text("a-long-line-without-spaces")
    assert_fits(page, "the job page")
    summary = page.locator("summary[aria-label='User menu']")
    assert_inside(page, summary, "the user menu")
    summary.click()
    assert_inside(page, page.get_by_role("button", name="Sign out alice"), "the user menu's sign-out")
    assert_inside(page, page.get_by_role("link", name="Files", exact=True), "the navigation's Files link")
    assert_fits(page, "the job page with its user menu open")
    assert_inside(page, page.get_by_role("button", name="Re-run"), "the Re-run button")
    screenshot(page, "phone-job.png")

    page.goto("/projects/demo/files/data")
    renames = page.get_by_role("button", name="Rename")
    expect(renames).to_have_count(2)
    assert_fits(page, "the file explorer")
    for i in range(renames.count()):
        assert_inside(page, renames.nth(i), f"Rename button {i + 1}")
        assert renames.nth(i).bounding_box()["height"] < 40, "the button's word is on one line"
    assert_inside(page, page.locator("summary[aria-label='User menu']"), "the user menu on the explorer")
    assert_inside(page, page.get_by_role("button", name="Run…"), "the Run… button")
    renames.first.click()
    assert_inside(page, page.get_by_label("New name"), "the rename dialog's field")
    assert_fits(page, "the file explorer with its rename dialog")
    screenshot(page, "phone-files.png")

    page.keyboard.press("Escape")
    page.goto(f"/routines/{routine.pk}/")
    expect(page.locator("#conf-editor[data-ready]")).to_be_attached()
    assert_fits(page, "the routine page with its Run form")
    assert_inside(page, page.get_by_role("button", name="Run", exact=True), "the Run button")

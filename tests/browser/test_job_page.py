"""Browser test 1: sign in, run a routine from its generated form, watch the job live, download its output."""

import json
import re

import pytest
from playwright.sync_api import expect

from jobs.models import Job
from tests.browser.conftest import screenshot, sign_in
from tests.web.conftest import make_routine

pytestmark = pytest.mark.browser

SCHEMA = {
    "type": "object",
    "properties": {
        "GREETING": {"type": "string", "enum": ["hello", "hi", "hey"], "default": "hello", "title": "Greeting"},
        "COUNT": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3, "title": "Count"},
        "WHO": {"type": "string", "minLength": 1, "title": "Who"},
        "TOKEN": {"type": "string", "format": "password", "title": "API token"},
    },
    "required": ["COUNT", "WHO"],
}
# prints a line a second for a while, then stores its greeting as an output
COMMAND = (
    'for i in 1 2 3 4 5 6 7; do echo "tick $i: $GREETING $WHO"; sleep 1; done; '
    'mkdir -p out; echo "$GREETING $WHO x$COUNT" > out/greeting.txt'
)


def log_frames(page, job_id):
    frames = [json.loads(f) for f in page.ws_frames if isinstance(f, str)]
    return [f for f in frames if f.get("type") == "log" and f.get("job") == job_id]


def test_run_a_routine_from_its_form_and_watch_the_job_live(tab, start_worker, project, alice):
    start_worker("local")
    routine = make_routine(
        project, alice, schema=SCHEMA, command=COMMAND, conf={"output_mappings": "/code/out/:acc://demo/greetings/"}
    )
    page = tab
    sign_in(page, "alice", "alice-pass-123")

    page.goto(f"/routines/{routine.pk}/")
    expect(page.locator("#conf-editor[data-ready]")).to_be_attached()
    # defaults filled, required marked, enums as selects, secrets as password inputs
    expect(page.locator('[name="root[COUNT]"]')).to_have_value("3")
    expect(page.locator('select[name="root[GREETING]"]')).to_have_value("hello")
    expect(page.locator('[name="root[TOKEN]"]')).to_have_attribute("type", "password")
    expect(page.locator('[data-schemapath="root.WHO"] .required').first).to_be_visible()

    # one field invalid: the error shows next to it and nothing is submitted
    page.fill('[name="root[WHO]"]', "Ada")
    page.select_option('select[name="root[GREETING]"]', "hi")
    page.fill('[name="root[COUNT]"]', "99")
    page.fill('[name="root[TOKEN]"]', "tok-secret-1")
    page.click("#run-button")
    expect(page.locator('[data-schemapath="root.COUNT"] [role=alert]')).to_contain_text("10")
    expect(page.locator("#form-errors")).to_contain_text("Fix the marked field")
    assert page.url.endswith(f"/routines/{routine.pk}/")
    assert not Job.objects.exists()

    page.fill('[name="root[COUNT]"]', "5")
    page.press('[name="root[COUNT]"]', "Tab")  # the error leaves and the button moves up: wait, as a person would
    expect(page.locator('[data-schemapath="root.COUNT"] .errmsg')).to_be_hidden()
    page.click("#run-button")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job_id = int(re.search(r"/jobs/(\d+)/$", page.url).group(1))
    job = Job.objects.get(pk=job_id)
    assert job.conf["COUNT"] == "5" and job.conf["WHO"] == "Ada" and "TOKEN" not in job.conf
    assert "tok-secret-1" not in page.content()

    # three lines of the job's own output while it still runs
    ticks = page.locator("#log .log-line", has_text="tick")
    expect(ticks.nth(2)).to_be_visible(timeout=30_000)
    assert page.locator("#status-badge").inner_text() == "RUNNING"
    assert page.locator("#log .log-line", has_text="tick 3: hi Ada").count() == 1
    expect(page.locator('#timeline li[data-phase="RUNNING"]')).to_have_class(re.compile("current"))
    assert page.evaluate("document.body.dataset.live") == "websocket"
    assert len(log_frames(page, job_id)) >= 1, "log lines must arrive over /ws/live/"

    # the socket drops mid-run: the page reconnects and resumes after the last seq it saw
    page.evaluate("window.accJobPage.live.ws.close()")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live", timeout=10_000)

    # pause holds new lines back; resume shows them
    page.click("#log-pause")
    shown = ticks.count()
    expect(page.locator("#log-pause")).to_contain_text("new)", timeout=5_000)
    assert ticks.count() == shown
    page.click("#log-pause")
    expect(ticks).not_to_have_count(shown)

    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED", timeout=60_000)
    expect(page.locator("#log .log-line", has_text="tick")).to_have_count(7)
    assert page.locator("#log .log-line", has_text="tick").all_inner_texts() == [
        f"tick {i}: hi Ada" for i in range(1, 8)
    ], "no line lost or repeated across the reconnect"
    seqs = [f["seq"] for f in log_frames(page, job_id)]
    assert seqs == sorted(set(seqs)), "no chunk twice, in order"

    # outputs appear without a reload; download one
    link = page.locator("#outputs a.output-link", has_text="greetings/greeting.txt")
    expect(link).to_be_visible(timeout=15_000)
    with page.expect_download() as download:
        link.click()
    assert open(download.value.path(), encoding="utf-8").read() == "hi Ada x5\n"

    # the whole log, and times in the viewer's own zone (the context runs in Asia/Tokyo)
    with page.expect_download() as whole:
        page.click("#log-download")
    assert "tick 7: hi Ada" in open(whole.value.path(), encoding="utf-8").read()
    created = page.locator("h1 + p time").first
    assert "UTC" not in created.inner_text()
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "Asia/Tokyo"
    screenshot(page, "job.png")

    # re-run: an identical job is answered from the build-system cache, and the page says why
    page.click("#rerun-button")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    assert not page.url.endswith(f"/jobs/{job_id}/")
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED")
    why = page.locator("#why")
    expect(why.locator("summary")).to_contain_text(f"Reused from #{job_id}")
    why.locator("summary").click()
    expect(why.locator(".why-body")).to_contain_text(f"#{job_id}")

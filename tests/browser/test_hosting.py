"""Browser tests of hosted models: an author publishes a routine, another user finds and launches it, the
author deprecates and archives the version; and a portal on another origin embeds the launch widget."""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from hosting import access
from hosting.models import HostedModel, HostedRun
from tests.browser.conftest import screenshot, sign_in
from tests.hosting.conftest import publish, square_routine

pytestmark = pytest.mark.browser


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", "carol@example.org", "carol-pass-123")


@pytest.fixture
def dave(django_user_model):
    return django_user_model.objects.create_user("dave", "dave@example.org", "dave-pass-123")


def new_tab(browser, web_server):
    context = browser.new_context(base_url=web_server.url, locale="en-GB", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    return context.new_page()


def version_row(page, number):
    return page.locator(f'#versions tr[data-version="{number}"]')


def set_status(page, number, status):
    row = version_row(page, number)
    row.locator("select[name=status]").select_option(status)
    row.locator("button.status-button").click()
    expect(page.locator("#messages")).to_contain_text(f"Version {number} is now {status}")


def test_publish_find_launch_then_deprecate_and_archive(tab, browser, web_server, start_worker, project, alice, carol):
    start_worker("local")
    square_routine(project, alice)

    # alice publishes her routine; the form starts from the routine's own schema
    author = tab
    sign_in(author, "alice", "alice-pass-123")
    author.goto("/hosted/new/")
    expect(author.locator("#publish-conf-schema")).to_have_value(re.compile(r'"minimum": 0'))
    author.fill("#publish-title", "Square a number")
    author.fill("#publish-slug", "square")
    author.fill("#publish-description", "Squares **n** and stores the result.")
    author.fill("#publish-tags", "maths")
    author.select_option("#publish-policy", "public")
    author.get_by_role("button", name="Add an output").click()
    author.get_by_label("Path in the container of output 1").fill("/code/out/")
    author.get_by_label("Name of output 1").fill("results")
    author.click("#publish-button")
    author.wait_for_url("**/hosted/square/")
    expect(author.locator("#messages")).to_contain_text("Published")

    # carol finds it in the catalog, fills the generated form and launches
    user = new_tab(browser, web_server)
    sign_in(user, "carol", "carol-pass-123")
    user.get_by_role("link", name="Models").click()
    user.fill("#catalog-q", "square")
    user.click("#search-button")
    user.locator("#models").get_by_role("link", name="Square a number").click()
    expect(user.locator("#description strong")).to_have_text("n")
    expect(user.locator("#conf-editor[data-ready]")).to_be_attached()
    # below the schema's minimum: refused in the page, next to the field. Leaving the field shows (or clears) its
    # error, which moves the button: the test waits for that as a person would, since a press and a release that
    # land on different elements make no click.
    user.fill('[name="root[n]"]', "-1")
    user.press('[name="root[n]"]', "Tab")
    expect(user.locator('[data-schemapath="root.n"] .errmsg')).to_contain_text("at least 0")
    user.click("#run-button")
    expect(user.locator("#form-errors")).to_contain_text("Fix the marked field")
    user.fill('[name="root[n]"]', "7")
    user.press('[name="root[n]"]', "Tab")
    expect(user.locator('[data-schemapath="root.n"] .errmsg')).to_be_hidden()
    user.click("#run-button")
    user.wait_for_url(re.compile(r"/jobs/\d+/$"))
    expect(user.locator("#status-badge")).to_have_text("SUCCEEDED", timeout=60_000)
    expect(user.locator("#log")).to_contain_text("square=49")
    user.goto("/hosted/square/")
    output = user.locator("#your-runs a.output-link")
    expect(output).to_have_text("results/result.txt")
    assert user.request.get(output.get_attribute("href")).text() == "square=49\n"

    # alice publishes version 2 and deprecates version 1; carol, choosing version 1, is warned
    author.click("#manage-link")
    expect(author.locator("#version-conf-schema")).to_have_value(re.compile(r'"minimum": 0'))
    author.click("#new-version-button")
    expect(author.locator("#messages")).to_contain_text("Published version 2")
    set_status(author, 1, "deprecated")
    expect(version_row(author, 1)).to_contain_text("→ use v2")

    user.goto("/hosted/square/")
    expect(user.locator("#deprecation")).to_have_count(0)
    user.select_option("#version-select", "1")
    user.click("#version-button")
    expect(user.locator("#deprecation")).to_have_text("Version 1 is deprecated; use version 2.")
    expect(user.locator("#conf-editor[data-ready]")).to_be_attached()
    user.fill('[name="root[n]"]', "3")
    screenshot(user, "hosted-model.png")

    # alice archives version 1 while carol's form is open: carol's launch is refused and nothing starts
    set_status(author, 1, "archived")
    user.click("#run-button")
    expect(user.locator("#form-errors")).to_have_text(
        "Version 1 of 'square' is archived and can no longer be launched. Launch version 2 instead."
    )
    expect(user.locator("#launch-version")).to_have_text("Launching version 2.")
    assert HostedRun.objects.count() == 1

    # alice sees carol's run, its version and outcome
    author.reload()
    expect(author.locator("#all-runs tbody tr")).to_have_count(1)
    expect(author.locator("#all-runs tbody tr")).to_contain_text("carol")
    expect(author.locator("#all-runs tbody tr")).to_contain_text("SUCCEEDED")
    screenshot(author, "hosted-manage.png")


class Portal:
    """A page on another origin (a portal) that embeds `src` in an iframe."""

    def __init__(self, src: str):
        html = (
            "<!doctype html><html><body><h1>Partner portal</h1>"
            f'<iframe id="acc-widget" src="{src}" width="760" height="820" title="Accelerator" '
            "onload=\"document.body.dataset.framed='1'\"></iframe></body></html>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def portals():
    started = []

    def start(src):
        started.append(Portal(src))
        return started[-1]

    yield start
    for portal in started:
        portal.stop()


def test_a_portal_on_another_origin_embeds_the_widget_and_launches_from_it(
    browser, web_server, start_worker, portals, project, alice, dave
):
    """The portal runs on another port of 127.0.0.1: another origin (so framing is governed by the widget's
    CSP frame-ancestors) but the same site, so the browser sends the platform's SameSite=Lax session cookie
    into the frame. A portal on another site (localhost) would need the user to sign in inside the frame."""
    start_worker("local")
    model = publish(alice, square_routine(project, alice), policy="link")
    src = f"{web_server.url}/hosted/square/widget/?token={access.link_token_of(model)}"
    portal, stranger = portals(src), portals(src)
    HostedModel.objects.filter(pk=model.pk).update(embed_origins=[portal.origin])

    page = new_tab(browser, web_server)
    sign_in(page, "dave", "dave-pass-123")
    page.goto(f"{portal.origin}/")
    widget = page.frame_locator("#acc-widget")
    expect(widget.locator("#conf-editor[data-ready]")).to_be_attached()
    widget.locator('[name="root[n]"]').fill("7")
    widget.locator("#upload-data").set_input_files(
        files=[{"name": "data.txt", "mimeType": "text/plain", "buffer": b"from the portal\n"}]
    )
    widget.locator("#secret-API_TOKEN").fill("portal-secret")
    widget.locator("#run-button").click()
    expect(widget.locator("#run-status .badge")).to_have_text("SUCCEEDED", timeout=60_000)
    link = widget.locator("#run-outputs a.output-link")
    expect(link).to_have_text("results/result.txt")
    assert page.url == f"{portal.origin}/"  # everything happened inside the frame
    screenshot(page, "hosted-widget.png")
    first = page.request.get(f"{web_server.url}{link.get_attribute('href')}").text()
    assert first == "square=49\nfrom the portal\n"

    # again, with the first result chosen from dave's own area as the input
    widget.locator("#launch-again").click()
    widget.get_by_role("button", name="Choose data from the project").click()
    for folder in ("hosted/", "square/", re.compile(r"^[0-9a-f]{16}/$"), "results/"):
        widget.locator("#input-picker-list a", has_text=folder).click()
    widget.get_by_role("button", name=re.compile(r"^Choose .*result\.txt$")).click()
    expect(widget.locator("#input-data")).to_have_value(re.compile(r"^hosted/square/[0-9a-f]{16}/results/result.txt$"))
    widget.locator('[name="root[n]"]').fill("2")
    widget.locator("#run-button").click()
    expect(widget.locator("#run-status .badge")).to_have_text("SUCCEEDED", timeout=60_000)
    second = page.request.get(f"{web_server.url}{link.get_attribute('href')}").text()
    assert second == "square=4\n" + first
    assert [(r.user, r.via) for r in HostedRun.objects.order_by("pk")] == [(dave, "widget")] * 2

    # a page from an origin the author did not list gets no widget: Chromium refuses the frame (its CSP)
    page.goto(f"{stranger.origin}/")
    expect(page.locator("body[data-framed]")).to_be_attached()
    [framed] = [frame for frame in page.frames if frame != page.main_frame]
    assert framed.url == "chrome-error://chromewebdata/"
    expect(widget.locator("#run-form")).to_have_count(0)
    expect(widget.locator("body")).not_to_contain_text("Square a number")

"""Browser test 3: a running jobflow's DAG, its node colours following the run live; retry and cancel."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from jobflows.services import dispatch_flow
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import wait_for_status

pytestmark = pytest.mark.browser

FLAKY_ONCE = 'if [ -f "$ACC_PIPE_DIR/{m}.seen" ]; then echo {m} ok; else touch "$ACC_PIPE_DIR/{m}.seen"; exit 1; fi'


def node(node_id, command):
    nonce = uuid.uuid4().hex[:8]  # never answered from an earlier test's cache
    return {
        "id": node_id,
        "name": node_id,
        "timeout": 60,
        "required_cores": 0.5,
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": f"echo {nonce}; {command}"},
    }


def dispatch(project, user, nodes, edges):
    return dispatch_flow(
        project=project, user=user, body={"format": "acc-dag/1", "name": "seed", "nodes": nodes, "edges": edges}
    )


def box(page, key):
    return page.locator(f'svg.dag .node[data-node="{key}"]')


def fill(page, key) -> str:
    """The node's colour once its transition has settled."""
    rect = box(page, key).locator("rect")
    rect.evaluate("el => Promise.all(el.getAnimations().map(a => a.finished))")
    return rect.evaluate("el => getComputedStyle(el).fill")


def test_node_colours_follow_a_running_jobflow(tab, start_worker, project, alice):
    start_worker("local", concurrency=4)
    root = dispatch(
        project,
        alice,
        [
            node("prep", "sleep 2"),
            node("model_a", "sleep 2"),
            node("model_b", "sleep 4"),
            node("combine", "sleep 1"),
        ],
        [["prep", "model_a"], ["prep", "model_b"], ["model_a", "combine"], ["model_b", "combine"]],
    )
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto(f"/jobs/{root.pk}/")

    # drawn left to right by depth, with an edge per dependency
    expect(page.locator("svg.dag .node")).to_have_count(4)
    xs = {k: box(page, k).evaluate("el => el.transform.baseVal[0].matrix.e") for k in ("prep", "model_a", "combine")}
    assert xs["prep"] < xs["model_a"] < xs["combine"]
    expect(page.locator("svg.dag path.edge")).to_have_count(4)
    assert box(page, "combine").get_attribute("data-status") == "PENDING"
    waiting = fill(page, "combine")

    # colours change as nodes finish, without a reload
    expect(box(page, "prep")).to_have_attribute("data-status", "SUCCEEDED", timeout=30_000)
    expect(box(page, "model_b")).to_have_attribute("data-status", re.compile("RUNNING|MAPPING_INPUTS"), timeout=15_000)
    assert box(page, "combine").get_attribute("data-status") in ("PENDING", "QUEUED")
    expect(page.locator("#status-badge")).to_have_text("RUNNING")
    screenshot(page, "jobflow.png")
    succeeded = fill(page, "prep")
    assert succeeded != waiting and fill(page, "model_b") not in (waiting, succeeded)

    expect(box(page, "combine")).to_have_attribute("data-status", "SUCCEEDED", timeout=30_000)
    assert fill(page, "combine") == succeeded
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED", timeout=15_000)
    assert page.evaluate("document.body.dataset.live") == "websocket"

    # click-through to a node's job page
    box(page, "model_a").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    expect(page.locator("h1")).to_contain_text("model_a")
    expect(page.locator(".crumbs")).to_contain_text(f"jobflow #{root.pk}")


def test_retry_failed_nodes_and_cancel_from_the_page(tab, start_worker, project, alice):
    start_worker("local", concurrency=4)
    root = dispatch(
        project,
        alice,
        [node("first", "true"), node("flaky", FLAKY_ONCE.format(m="flaky")), node("last", "true")],
        [["first", "flaky"], ["flaky", "last"]],
    )
    wait_for_status(root.pk, "FAILED", timeout=60)
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto(f"/jobs/{root.pk}/")
    expect(box(page, "flaky")).to_have_attribute("data-status", "FAILED")
    expect(box(page, "last")).to_have_attribute("data-status", "SKIPPED")
    expect(page.locator("#run-message")).to_contain_text("flaky")
    page.click("#retry-button")
    expect(box(page, "last")).to_have_attribute("data-status", "SUCCEEDED", timeout=30_000)
    expect(box(page, "flaky")).to_have_attribute("data-status", "SUCCEEDED")
    expect(box(page, "first")).to_have_attribute("data-status", "SUCCEEDED")
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED", timeout=15_000)
    expect(page.locator("#retry-button")).to_have_count(0)

    slow = dispatch(project, alice, [node("slow", "sleep 30"), node("after", "true")], [["slow", "after"]])
    page.goto(f"/jobs/{slow.pk}/")
    expect(box(page, "slow")).to_have_attribute("data-status", "RUNNING", timeout=30_000)
    page.click("#cancel-button")
    expect(page.locator("#status-badge")).to_have_text("CANCELLED", timeout=30_000)
    expect(box(page, "after")).to_have_attribute("data-status", "CANCELLED")

"""Browser tests 5 and 6: build a diverging and converging jobflow in the builder (mouse, then keyboard only),
run it and watch it; export it as wkube.py and dispatch it with `acc`: every node is answered by the cache."""

import re
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect

from jobflows.models import Jobflow
from routines import services as routine_services
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import ACCLI, wait_for_status, web_code

pytestmark = pytest.mark.browser

ACC = str(Path(ACCLI).parent / "acc")
SCHEMA = {"type": "object", "properties": {"N": {"type": "integer", "minimum": 1, "default": 1}}}
EDGES = [["count", "finish"], ["prep", "count"], ["prep", "prep-2"], ["prep-2", "finish"]]


def make_routine(project, user, name, command, **extra):
    task = {
        "name": name,
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": command},
        "timeout": 60,
        "required_cores": 0.5,
        **extra,
    }
    return routine_services.save_routine(project=project, user=user, task=task)


@pytest.fixture
def routines(project, alice):
    """Three routines; prep is used twice (A and C), count (B) has a conf schema, finish (D) converges."""
    nonce = uuid.uuid4().hex[:8]  # never answered from an earlier test's cache
    return {
        "prep": make_routine(project, alice, "prep", f"echo {nonce} prep; sleep 1"),
        "count": make_routine(project, alice, "count", f"echo {nonce} count $N; sleep 2", conf_schema=SCHEMA),
        "finish": make_routine(project, alice, "finish", f"echo {nonce} finish"),
    }


def centre(page, node_id):
    """Where node `node_id` is drawn on the screen (the layout moves nodes after every change)."""
    return page.evaluate(
        """id => { const n = window.accBuilder.cy.getElementById(id); const p = n.renderedPosition();
                   const r = document.getElementById('canvas').getBoundingClientRect();
                   return [r.left + p.x, r.top + p.y]; }""",
        node_id,
    )


def drag_link(page, before, after):
    """Press on `before`, drag onto `after`, release: edgehandles draws "after runs after before"."""
    ax, ay = centre(page, before)
    bx, by = centre(page, after)
    page.mouse.move(ax, ay)
    page.mouse.down()
    page.mouse.move((ax + bx) / 2, (ay + by) / 2, steps=8)
    page.mouse.move(bx, by, steps=8)
    page.mouse.up()


def saved_edges(name):
    flow = Jobflow.objects.get(name=name)
    return sorted(flow.latest_version.definition["edges"]), flow


def node_times(api, user, root_id):
    nodes = {n["node"]: n for n in api(user).get(f"/api/v1/jobs/{root_id}/").json()["nodes"]}
    start = {k: datetime.fromisoformat(n["started_at"]) for k, n in nodes.items() if n["started_at"]}
    end = {k: datetime.fromisoformat(n["finished_at"]) for k, n in nodes.items() if n["finished_at"]}
    return nodes, start, end


def watch_run(page, api, alice, root_id):
    """The live DAG page colours nodes as they finish; finish ran after both count and prep-2."""
    box = lambda key: page.locator(f'svg.dag .node[data-node="{key}"]')  # noqa: E731
    expect(page.locator("svg.dag .node")).to_have_count(4)
    expect(box("prep")).to_have_attribute("data-status", "SUCCEEDED", timeout=60_000)
    assert box("finish").get_attribute("data-status") in ("PENDING", "QUEUED", "BUILDING", "MAPPING_INPUTS", "RUNNING")
    expect(box("finish")).to_have_attribute("data-status", "SUCCEEDED", timeout=60_000)
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED", timeout=30_000)
    assert wait_for_status(root_id, {"SUCCEEDED", "FAILED"}, timeout=60).status == "SUCCEEDED"
    nodes, start, end = node_times(api, alice, root_id)
    assert start["finish"] >= max(end["count"], end["prep-2"]), "D ran after B and C"
    assert min(start["count"], start["prep-2"]) >= end["prep"], "B and C ran after A"
    assert set(nodes["finish"]["after"]) == {"count", "prep-2"}
    return nodes


def test_build_with_the_mouse_run_and_watch_it(tab, start_worker, project, alice, api, routines):
    start_worker("local", concurrency=4)
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto("/projects/demo/")
    page.get_by_role("link", name="New jobflow").click()
    expect(page.get_by_role("heading", name="New jobflow")).to_be_visible()
    canvas = page.locator("#canvas")
    for name in ("prep", "count", "prep", "finish"):
        page.locator(".palette-item", has_text=re.compile(rf"^{name}\b")).drag_to(canvas)
    expect(page.locator("#node-select option")).to_have_count(5)  # "—" and four nodes
    for before, after in [["prep", "count"], ["prep", "prep-2"], ["count", "finish"], ["prep-2", "finish"]]:
        drag_link(page, before, after)
        expect(page.locator("#builder-message")).to_have_text(f"{after} now runs after {before}.")

    drag_link(page, "finish", "prep")  # would close a loop
    expect(page.locator("#builder-message")).to_contain_text("cycle")
    assert page.evaluate("window.accBuilder.edges.length") == 4

    x, y = centre(page, "count")
    page.mouse.click(x, y)
    expect(page.locator("#panel-title")).to_have_text("Node count")
    page.get_by_label("N", exact=True).fill("5")
    page.get_by_label("Jobflow name").fill("diamond")
    screenshot(page, "builder.png")
    page.get_by_role("button", name="Save jobflow").click()
    expect(page.get_by_role("heading", name=re.compile("^diamond"))).to_be_visible()
    edges, flow = saved_edges("diamond")
    assert edges == EDGES
    count = next(n for n in flow.latest_version.definition["nodes"] if n["id"] == "count")
    assert count["conf"] == {"N": "5"} and count["routine"] == routines["count"].pk

    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    root_id = int(re.search(r"/jobs/(\d+)/$", page.url).group(1))
    nodes = watch_run(page, api, alice, root_id)
    log = "".join(c["text"] for c in api(alice).get(f"/api/v1/jobs/{nodes['count']['id']}/logs/").json()["chunks"])
    assert "count 5" in log, log


def test_build_with_the_keyboard_only(tab, start_worker, project, alice, api, routines):
    start_worker("local", concurrency=4)
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto("/projects/demo/jobflows/new/")
    keys = page.keyboard

    def press(locator, key="Enter"):
        locator.focus()
        keys.press(key)

    def routine_key(name):
        return f"{routines[name].pk}:{routines[name].latest_version.number}"

    for name in ("prep", "count", "prep", "finish"):
        page.get_by_label("Routine to add").select_option(routine_key(name))
        press(page.get_by_role("button", name="Add node"))
    expect(page.locator("#node-select option")).to_have_count(5)

    def runs_after(node, parents):
        page.get_by_label("Node to edit").select_option(node)
        expect(page.locator("#panel-title")).to_have_text(f"Node {node}")
        for parent in parents:
            press(page.locator("#after-list").get_by_role("checkbox", name=parent, exact=True), "Space")
            expect(page.locator("#builder-message")).to_have_text(f"{node} now runs after {parent}.")

    runs_after("count", ["prep"])
    runs_after("prep-2", ["prep"])
    runs_after("finish", ["count", "prep-2"])

    # a cycle is refused at once, with a message, and the box stays unchecked
    page.get_by_label("Node to edit").select_option("prep")
    loop = page.locator("#after-list").get_by_role("checkbox", name="finish", exact=True)
    press(loop, "Space")
    expect(page.locator("#builder-message")).to_contain_text("would make a cycle")
    expect(loop).not_to_be_checked()

    # a value the routine's schema refuses comes back from the server at its node
    page.get_by_label("Node to edit").select_option("count")
    page.get_by_label("N", exact=True).focus()  # the form shows the routine's value, 1
    keys.press("Control+a")
    keys.type("zero")
    page.get_by_label("Jobflow name").focus()
    keys.type("diamond by keyboard")
    press(page.get_by_role("button", name="Save jobflow"))
    expect(page.locator("#builder-error")).to_contain_text("Node count: N='zero' is refused")
    expect(page.locator("#node-error")).to_contain_text("refused by the routine's schema")
    expect(page.locator("#panel-title")).to_have_text("Node count")
    assert not Jobflow.objects.exists(), "nothing saved"

    page.get_by_label("N", exact=True).fill("")
    page.get_by_label("N", exact=True).focus()
    keys.type("5")
    press(page.get_by_role("button", name="Save jobflow"))
    expect(page.get_by_role("heading", name=re.compile("^diamond by keyboard"))).to_be_visible()
    edges, flow = saved_edges("diamond by keyboard")
    assert edges == EDGES
    assert next(n for n in flow.latest_version.definition["nodes"] if n["id"] == "count")["conf"] == {"N": "5"}

    press(page.get_by_role("button", name="Run"))
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    watch_run(page, api, alice, int(re.search(r"/jobs/(\d+)/$", page.url).group(1)))

    # the routine changes later: the saved jobflow keeps its version until the node is told to take the new one
    edited = {"name": "prep", "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": "echo edited"}}
    routine_services.save_routine(project=project, user=alice, task=edited, routine=routines["prep"])
    page.goto(f"/jobflows/{flow.pk}/edit/")
    page.get_by_label("Node to edit").select_option("prep-2")
    press(page.get_by_role("button", name="Use the latest version, v2"))
    expect(page.locator("#builder-message")).to_have_text("prep-2 now runs prep v2.")
    press(page.get_by_role("button", name="Save jobflow"))
    expect(page.get_by_role("heading", name=re.compile("^diamond by keyboard v2"))).to_be_visible()
    pins = {n["id"]: n["version"] for n in Jobflow.objects.get(pk=flow.pk).latest_version.definition["nodes"]}
    assert pins == {"prep": 1, "count": 1, "prep-2": 2, "finish": 1}


def acc_login(base_url: str, home: Path) -> None:
    code = web_code(base_url, "alice", "alice-pass-123")
    login = subprocess.run(
        [ACCLI, "login", "-s", base_url, "-c", base_url],
        input=code + "\n",
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert login.returncode == 0, login.stdout + login.stderr


def test_exported_wkube_dispatched_with_acc_reuses_every_node(
    tab, web_server, start_worker, project, alice, api, routines, tmp_path
):
    start_worker("local", concurrency=4)
    from jobflows import saved

    definition = {
        "nodes": [
            {"id": "prep", "routine": routines["prep"].pk, "version": 1},
            {"id": "count", "routine": routines["count"].pk, "version": 1, "conf": {"N": "5"}},
            {"id": "prep-2", "routine": routines["prep"].pk, "version": 1},
            {"id": "finish", "routine": routines["finish"].pk, "version": 1},
        ],
        "edges": EDGES,
    }
    flow, _, _ = saved.save_jobflow(project=project, user=alice, name="diamond", definition=definition)
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto(f"/jobflows/{flow.pk}/")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    first = int(re.search(r"/jobs/(\d+)/$", page.url).group(1))
    assert wait_for_status(first, {"SUCCEEDED", "FAILED"}, timeout=120).status == "SUCCEEDED"
    built, _, _ = node_times(api, alice, first)

    page.goto(f"/jobflows/{flow.pk}/")
    expect(page.get_by_role("link", name="Publish")).to_have_attribute("href", f"/hosted/new/?run={first}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export wkube.py").click()
    folder = tmp_path / "flow"
    folder.mkdir()
    download.value.save_as(folder / "wkube.py")
    home = tmp_path / "home"
    home.mkdir()
    acc_login(web_server.url, home)
    done = subprocess.run(
        [ACC, "dispatch", "demo", "flow", "-f", "wkube.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    second = int(re.fullmatch(r"Dispatched root job #ID: (\d+)\n", done.stdout).group(1))
    started = time.monotonic()
    assert wait_for_status(second, {"SUCCEEDED", "FAILED"}, timeout=120).status == "SUCCEEDED"
    again, _, _ = node_times(api, alice, second)
    assert list(again) == list(built), "the same nodes"
    assert {k: set(n["after"]) for k, n in again.items()} == {k: set(n["after"]) for k, n in built.items()}
    assert {k: n["reused_from"] for k, n in again.items()} == {k: n["id"] for k, n in built.items()}, (
        "every node is answered by the build cache"
    )
    assert time.monotonic() - started < 60

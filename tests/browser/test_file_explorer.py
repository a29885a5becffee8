"""Browser test 2: the file explorer; a routine launched on two selected files receives exactly those."""

import io
import json
import re

import pytest
from playwright.sync_api import expect

from files import services as files
from jobs.models import Job
from tests.browser.conftest import sign_in
from tests.web.conftest import make_routine

pytestmark = pytest.mark.browser

LIST_INPUTS = (
    'echo "selected_files=$selected_files"; echo "selected_folders=$selected_folders"; '
    "mkdir -p out; (cd inputs && find . -type f | sort) | tee out/received.txt"
)


def write(project, relpath, data: bytes):
    files.write_file(project=project, relpath=relpath, stream=io.BytesIO(data))


def row(page, path):
    return page.locator(f'#entries tr[data-path="{path}"]')


def test_launch_a_routine_on_two_selected_files(tab, start_worker, project, alice):
    start_worker("local")
    for name in ("a.csv", "b.csv", "c.csv"):
        write(project, f"data/{name}", f"content of {name}\n".encode())
    routine = make_routine(
        project,
        alice,
        name="list-inputs",
        schema=None,
        command=LIST_INPUTS,
        conf={"output_mappings": "/code/out/:acc://demo/results/"},
    )
    page = tab
    sign_in(page, "alice", "alice-pass-123")

    page.goto("/projects/demo/files/data")
    row(page, "data/a.csv").locator("input[name=paths]").check()
    row(page, "data/c.csv").locator("input[name=paths]").check()
    page.select_option("#launch-routine", str(routine.pk))
    page.click("#launch-button")

    page.wait_for_url(re.compile(rf"/routines/{routine.pk}/\?"))
    expect(page.locator("#selection-list li")).to_have_count(2)
    expect(page.locator("#conf-editor[data-ready]")).to_be_attached()
    page.click("#run-button")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    expect(page.locator("#status-badge")).to_have_text("SUCCEEDED", timeout=60_000)

    job = Job.objects.get()
    assert json.loads(job.conf["selected_files"]) == ["inputs/data/a.csv", "inputs/data/c.csv"]
    assert json.loads(job.conf["selected_folders"]) == []
    expect(page.locator("#log")).to_contain_text('selected_files=["inputs/data/a.csv","inputs/data/c.csv"]')
    lines = page.locator("#log .log-line", has_text=re.compile(r"^\./"))
    expect(lines).to_have_count(2)
    assert lines.all_inner_texts() == ["./data/a.csv", "./data/c.csv"]
    with files.open_file(project=project, relpath="results/received.txt") as fh:
        assert fh.read() == b"./data/a.csv\n./data/c.csv\n"


def test_upload_new_folder_rename_move_and_delete(tab, tmp_path, project, alice):
    write(project, "old.txt", b"old\n")
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto("/projects/demo/files/")

    # upload two files, then a folder, with the progress bar
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("1\n")
    two.write_bytes(b"2" * 300_000)
    page.set_input_files("#upload-files", [str(one), str(two)])
    expect(row(page, "two.txt")).to_be_visible()
    expect(row(page, "one.txt")).to_be_visible()
    folder = tmp_path / "batch"
    (folder / "inner").mkdir(parents=True)
    (folder / "x.csv").write_text("x\n")
    (folder / "inner" / "y.csv").write_text("y\n")
    page.set_input_files("#upload-folder", str(folder))
    expect(row(page, "batch")).to_be_visible()
    assert files.list_folder(project=project, relpath="batch/inner")["entries"][0]["name"] == "y.csv"

    # new folder; a bad name is refused next to its field
    page.fill("#mkdir-name", "bad/name")
    page.click("#mkdir-button")
    expect(page.locator("#mkdir-form .field-error")).to_contain_text("cannot contain")
    page.fill("#mkdir-name", "archive")
    page.click("#mkdir-button")
    expect(row(page, "archive")).to_be_visible()

    # rename
    row(page, "old.txt").locator("button.rename").click()
    page.fill("#rename-name", "renamed.txt")
    page.click("#rename-button")
    expect(row(page, "renamed.txt")).to_be_visible()
    expect(row(page, "old.txt")).to_have_count(0)

    # move two items into the new folder
    row(page, "renamed.txt").locator("input[name=paths]").check()
    row(page, "batch").locator("input[name=paths]").check()
    page.fill("#move-destination", "archive")
    page.click("#move-button")
    expect(row(page, "batch")).to_have_count(0)
    page.goto("/projects/demo/files/archive")
    expect(row(page, "archive/batch")).to_be_visible()
    expect(row(page, "archive/renamed.txt")).to_be_visible()

    # download
    with page.expect_download() as download:
        row(page, "archive/renamed.txt").locator("a.file-link").click()
    assert open(download.value.path()).read() == "old\n"

    # delete (after confirming)
    page.once("dialog", lambda dialog: dialog.accept())
    row(page, "archive/batch").locator("input[name=paths]").check()
    page.click("#delete-button")
    expect(row(page, "archive/batch")).to_have_count(0)
    assert [e["name"] for e in files.list_folder(project=project, relpath="archive")["entries"]] == ["renamed.txt"]


def test_the_run_form_picks_files_from_the_project(tab, project, alice):
    write(project, "data/a.csv", b"a\n")
    write(project, "data/b.csv", b"b\n")
    routine = make_routine(project, alice, name="pick", schema=None)
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    page.goto(f"/routines/{routine.pk}/")
    page.click("#pick-files")
    dialog = page.locator("#picker")
    dialog.get_by_text("data/").click()
    dialog.locator('input[value="data/b.csv"]').check()
    page.click("#picker-add")
    expect(page.locator("#selection-list li")).to_have_count(1)
    expect(page.locator('#selection-list input[name=selected][value="data/b.csv"]')).to_be_attached()
    page.locator("#selection-list .remove-selected").click()
    expect(page.locator("#selection-list li")).to_have_count(0)

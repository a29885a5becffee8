"""files.services: storing, listing, deleting and copying project files."""

import hashlib
import io
import os

import pytest

from accelerator.errors import Conflict, InvalidInput, NotFound
from files import services
from routines.models import Project

pytestmark = pytest.mark.django_db


def write(project, relpath, data: bytes):
    return services.write_file(project=project, relpath=relpath, stream=io.BytesIO(data))


def test_write_file_stores_under_the_project_prefix_and_reports_size_and_sha256(project, storage_root):
    stored = write(project, "data/x.csv", b"a,b\n")
    assert stored == {"path": "data/x.csv", "size": 4, "sha256": hashlib.sha256(b"a,b\n").hexdigest()}
    assert (storage_root / f"projects/{project.pk}/data/x.csv").read_bytes() == b"a,b\n"


def test_write_file_replaces_an_existing_file(project):
    write(project, "x.txt", b"old")
    write(project, "x.txt", b"new")
    with services.open_file(project=project, relpath="x.txt") as fh:
        assert fh.read() == b"new"
    assert [e["name"] for e in services.list_folder(project=project, relpath="")["entries"]] == ["x.txt"]


def test_write_file_over_the_size_limit_stores_nothing(project):
    with pytest.raises(InvalidInput) as err:
        services.write_file(project=project, relpath="big", stream=io.BytesIO(b"x" * 11), max_bytes=10)
    assert "limit of 10 bytes" in err.value.detail
    assert services.path_kind(project=project, relpath="big") is None


def test_write_file_below_a_file_is_a_conflict(project):
    write(project, "a", b"file")
    with pytest.raises(Conflict):
        write(project, "a/b", b"x")


def test_write_file_onto_a_folder_is_a_conflict(project):
    write(project, "d/x", b"x")
    with pytest.raises(Conflict):
        write(project, "d", b"x")


def test_list_folder_shows_folders_then_files_with_size(project):
    write(project, "d/sub/x", b"x")
    write(project, "d/b.txt", b"bb")
    listing = services.list_folder(project=project, relpath="d")
    assert listing["path"] == "d"
    assert [(e["name"], e["path"], e["type"], e["size"]) for e in listing["entries"]] == [
        ("sub", "d/sub", "folder", None),
        ("b.txt", "d/b.txt", "file", 2),
    ]
    assert listing["entries"][1]["modified"]


def test_list_folder_of_a_missing_path_is_not_found(project):
    with pytest.raises(NotFound):
        services.list_folder(project=project, relpath="nope")


def test_projects_do_not_see_each_others_files(project):
    other = Project.objects.create(slug="other", name="Other")
    write(project, "x", b"mine")
    assert services.list_folder(project=other, relpath="")["entries"] == []


def test_delete_path_removes_a_folder_recursively(project):
    write(project, "d/a", b"a")
    write(project, "d/e/b", b"b")
    write(project, "keep", b"k")
    assert services.delete_path(project=project, relpath="d") == 2
    assert [e["name"] for e in services.list_folder(project=project, relpath="")["entries"]] == ["keep"]


def test_delete_path_refuses_the_root_and_reports_missing_paths(project):
    with pytest.raises(InvalidInput):
        services.delete_path(project=project, relpath="")
    with pytest.raises(NotFound):
        services.delete_path(project=project, relpath="nope")


def test_copy_to_local_puts_folder_contents_inside_dest(project, tmp_path):
    write(project, "in/a.txt", b"a")
    write(project, "in/sub/b.txt", b"b")
    written = services.copy_to_local(project=project, relpath="in", dest=tmp_path / "code/input")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == ["code/input/a.txt", "code/input/sub/b.txt"]
    assert (tmp_path / "code/input/sub/b.txt").read_bytes() == b"b"


def test_copy_to_local_puts_a_file_inside_dest_optionally_renamed(project, tmp_path):
    write(project, "x.csv", b"1")
    services.copy_to_local(project=project, relpath="x.csv", dest=tmp_path / "a")
    services.copy_to_local(project=project, relpath="x.csv", dest=tmp_path / "b", name="input.csv")
    assert (tmp_path / "a/x.csv").read_bytes() == b"1" and (tmp_path / "b/input.csv").read_bytes() == b"1"


def test_copy_to_local_of_a_missing_path_is_not_found(project, tmp_path):
    with pytest.raises(NotFound):
        services.copy_to_local(project=project, relpath="missing", dest=tmp_path)


def test_copy_to_local_does_not_write_through_a_symlink(project, tmp_path):
    write(project, "in/evil/x", b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "evil")
    with pytest.raises(InvalidInput):
        services.copy_to_local(project=project, relpath="in", dest=dest)
    assert not (outside / "x").exists()


def test_store_from_local_stores_a_folder_recursively(project, tmp_path):
    src = tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    (src / "r.txt").write_bytes(b"r")
    (src / "sub/s.txt").write_bytes(b"ss")
    os.symlink("/etc/passwd", src / "link")
    stored = services.store_from_local(project=project, src=src, relpath="results")
    assert [(s["path"], s["size"]) for s in stored] == [("results/r.txt", 1), ("results/sub/s.txt", 2)]
    assert all(len(s["sha256"]) == 64 for s in stored)
    assert services.path_kind(project=project, relpath="results/link") is None


def test_store_from_local_puts_a_file_at_relpath_or_inside_a_folder(project, tmp_path):
    src = tmp_path / "r.csv"
    src.write_bytes(b"1")
    assert services.store_from_local(project=project, src=src, relpath="out.csv")[0]["path"] == "out.csv"
    assert services.store_from_local(project=project, src=src, relpath="out/")[0]["path"] == "out/r.csv"
    assert services.store_from_local(project=project, src=src, relpath="out")[0]["path"] == "out/r.csv"

"""Job-folder selection: accli's include/exclude meaning, checked against accli's own copy_tree."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from acc_client.folder import list_job_files, manifest_bytes, sha1_file

FILES = [
    "main.py",
    "wkube.py",
    "notes.txt",
    "sub/wkube.py",
    "data/x.csv",
    "data/y.txt",
    ".git/config",
    ".venv/lib/a.py",
    ".venv/lib/b.txt",
]


@pytest.fixture
def job(tmp_path):
    root = tmp_path / "job"
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"content of {rel}\n")
    return root


def paths(root, include=None, exclude=None) -> list[str]:
    return [rel for rel, _ in list_job_files(str(root), include, exclude)]


def accli_paths(root, tmp_path, include=None, exclude=None) -> list[str]:
    """What accli 2.0.14 would upload: its copy_tree, minus the top-level wkube.py it drops."""
    dispatcher = pytest.importorskip("accli.AcceleratorTaskDispatcher")
    out = tmp_path / f"accli-{include}-{exclude}".replace("*", "star").replace(",", "_").replace("/", "_")
    out.mkdir()
    dispatcher.copy_tree(str(root), str(out), include, exclude)
    found = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    return [p for p in found if p != "wkube.py"]


def test_everything_but_git_and_the_top_level_wkube(job):
    assert paths(job) == [
        ".venv/lib/a.py",
        ".venv/lib/b.txt",
        "data/x.csv",
        "data/y.txt",
        "main.py",
        "notes.txt",
        "sub/wkube.py",
    ]


@pytest.mark.parametrize(
    "include, exclude",
    [
        (None, None),
        (None, ".venv, *.txt"),
        (None, ".venv/*"),
        ("*.py", None),
        ("data/*", None),
        ("*.py", "*.txt"),
        ("data/*, main.py", "*.txt, *.csv"),
    ],
)
def test_same_selection_as_accli(job, tmp_path, include, exclude):
    assert paths(job, include, exclude) == accli_paths(job, tmp_path, include, exclude)


def test_files_in_an_excluded_folder_stay_out_unless_included(job):
    # accli would also keep .venv/lib/b.txt here; an excluded folder should stay excluded.
    assert paths(job, "*.py", ".venv") == [
        ".venv/lib/a.py",
        "data/x.csv",
        "data/y.txt",
        "main.py",
        "notes.txt",
        "sub/wkube.py",
    ]


def test_symlinked_folder_loop_is_walked_once(job):
    os.symlink(job, job / "data" / "loop")
    assert "data/loop/main.py" not in paths(job)
    assert len(paths(job)) == 7


def test_manifest_is_formatted_like_accli(job):
    entry = {"path": "main.py", "hash": sha1_file(str(job / "main.py")), "mode": 33188}
    assert entry["hash"] == hashlib.sha1(b"content of main.py\n").hexdigest()
    raw = manifest_bytes([entry])
    assert raw == json.dumps({"type": "cas_manifest", "files": [entry]}).encode()
    assert raw.startswith(b'{"type": "cas_manifest", "files": [{"path": "main.py", "hash": "')

"""Which files of a job folder are uploaded, and the manifest that names them.

The selection means what accli's include/exclude mean: comma-separated
fnmatch patterns tried against the path relative to the job folder and
against the bare name; an include wins over an exclude; includes alone act
as a whitelist; `.git` is skipped and a top-level wkube.py dropped. One
deliberate difference: a file inside an excluded directory stays out unless
an include names it (accli keeps it when both lists are given).

Files are listed in sorted order, so the manifest and its hash are the same
on every machine and an unchanged folder is a cache hit on the server.
"""

from __future__ import annotations

import hashlib
import json
import os
from fnmatch import fnmatch


def patterns(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _matches(rel: str, name: str, pats: list[str]) -> bool:
    return any(fnmatch(rel, p) or fnmatch(name, p) for p in pats)


def list_job_files(folder: str, include: str | None = None, exclude: str | None = None) -> list[tuple[str, str]]:
    """(relative posix path, absolute path) of every file to upload, sorted by path."""
    includes, excludes = patterns(include), patterns(exclude)
    out: list[tuple[str, str]] = []
    excluded_dirs: set[str] = set()
    visited = {os.path.realpath(folder)}  # symlinked directories are followed once, never in a loop
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        rel_dir = os.path.relpath(dirpath, folder).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        inside_excluded = rel_dir.rstrip("/") in excluded_dirs
        kept = []
        for name in sorted(dirnames):
            rel, real = rel_dir + name, os.path.realpath(os.path.join(dirpath, name))
            if name == ".git" or real in visited:
                continue
            if inside_excluded or _matches(rel, name, excludes):
                if not includes:
                    continue
                excluded_dirs.add(rel)  # walked only to find files an include brings back
            visited.add(real)
            kept.append(name)
        dirnames[:] = kept
        for name in filenames:
            rel, path = rel_dir + name, os.path.join(dirpath, name)
            if rel == "wkube.py" or not os.path.isfile(path):
                continue
            if _matches(rel, name, includes):
                out.append((rel, os.path.abspath(path)))
            elif inside_excluded or _matches(rel, name, excludes) or (includes and not excludes):
                continue
            else:
                out.append((rel, os.path.abspath(path)))
    return sorted(out)


def sha1_file(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_bytes(entries: list[dict]) -> bytes:
    """The manifest as uploaded; formatted like accli's json.dump so equal folders hash alike."""
    return json.dumps({"type": "cas_manifest", "files": entries}).encode()

"""Upload job folders to the project's content-addressed jobstore at dispatch time.

Each file goes up once as cas_<sha1>.blob (the server answers 409 when it
already has it, so an unchanged folder costs one GET per file), then a
manifest naming path, hash and mode as manifest_<sha1>.json. The task then
points at it with repo_url="s3accjobstore://manifest_<sha1>.json" and
repo_branch=<sha1>, exactly what accli sends, so the server treats both alike.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import IO

from acc_client.api import Api
from acc_client.folder import list_job_files, manifest_bytes, sha1_file
from acc_client.task import WKubeTask

FolderKey = tuple[str, str | None, str | None]  # absolute folder, include, exclude
WORKERS = 8


def upload_job_folders(
    api: Api, project: str, tasks: Iterable[WKubeTask], *, report: Callable[[str], None] = lambda _: None
) -> dict[WKubeTask, dict]:
    """repo_url/repo_branch for every task that needs its folder uploaded; one upload per folder+filters."""
    done: dict[FolderKey, dict] = {}
    out = {}
    for task in tasks:
        if task.folder is None:
            continue
        if task.folder not in done:
            done[task.folder] = push_folder(api, project, task.folder, report=report)
        out[task] = done[task.folder]
    return out


def push_folder(api: Api, project: str, key: FolderKey, *, report: Callable[[str], None]) -> dict:
    folder, include, exclude = key
    files = list_job_files(folder, include, exclude)

    def push_file(item: tuple[str, str]) -> tuple[dict, bool]:
        rel, path = item
        digest = sha1_file(path)
        sent = _push(api, project, f"cas_{digest}.blob", lambda: open(path, "rb"))
        return {"path": rel, "hash": digest, "mode": os.stat(path).st_mode}, sent

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(push_file, files))
    entries = [entry for entry, _ in results]
    manifest = manifest_bytes(entries)
    digest = hashlib.sha1(manifest).hexdigest()
    _push(api, project, f"manifest_{digest}.json", lambda: io.BytesIO(manifest))
    sent = sum(1 for _, was_sent in results if was_sent)
    report(f"Job folder {folder}: {len(entries)} files, {sent} uploaded, manifest {digest[:12]}")
    return {"repo_url": f"s3accjobstore://manifest_{digest}.json", "repo_branch": digest}


def _push(api: Api, project: str, filename: str, opener: Callable[[], IO[bytes]]) -> bool:
    url = api.push_url(project, filename)
    if url is None:
        return False
    api.put(url, opener)
    return True

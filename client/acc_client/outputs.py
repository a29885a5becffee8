"""`acc outputs`: download a job's (or a jobflow's nodes') output files and verify them.

Files keep their project paths below the target folder. Each is written to a
temporary name and only renamed into place when its sha256 matches what the
job recorded, so a half or corrupted download never looks like a result.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath

from acc_client.api import Api
from acc_client.errors import AccError


def collect(api: Api, job_id: int) -> dict[str, dict]:
    """path -> {"url", "size", "sha256s"} over the job and, for a jobflow, each node job."""
    job = api.get_json(f"/api/v1/jobs/{job_id}/")
    listed = list(job.get("outputs") or [])
    for node in job.get("nodes") or []:
        if node.get("id") not in (None, job.get("id")):
            listed += api.get_json(f"/api/v1/jobs/{node['id']}/").get("outputs") or []
    wanted: dict[str, dict] = {}
    for item in listed:
        entry = wanted.setdefault(item["path"], {"url": item["url"], "size": item.get("size"), "sha256s": set()})
        # Two nodes may write one path; the project keeps the last write, which matches one of them.
        entry["sha256s"].add(item.get("sha256"))
    return wanted


def destination(folder: Path, path: str) -> Path:
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or ".." in parts:
        raise AccError(f"refusing output path {path!r}: it would leave {folder}")
    return folder.joinpath(*parts)


def fetch(api: Api, url: str, dest: Path, sha256s: set) -> str:
    """Download to dest; returns the sha256, and keeps the file only if it is one of sha256s."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.part")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as fh:

            def sink(block: bytes) -> None:
                fh.write(block)
                digest.update(block)

            api.download(url, sink)
        if None in sha256s or digest.hexdigest() in sha256s:
            os.replace(partial, dest)
    finally:
        if partial.exists():
            partial.unlink()
    return digest.hexdigest()


def download_outputs(api: Api, job_id: int, folder: Path) -> list[str]:
    """Download everything; raise after the last file if any did not verify."""
    wanted = collect(api, job_id)
    if not wanted:
        print(f"Job #{job_id} has no outputs.")
        return []
    bad = []
    for path, item in sorted(wanted.items()):
        got = fetch(api, item["url"], destination(folder, path), item["sha256s"])
        if None in item["sha256s"] or got in item["sha256s"]:
            print(f"{path}  {item['size']} bytes")
        else:
            bad.append(path)
    if bad:
        raise AccError(f"sha256 mismatch, not kept: {', '.join(bad)}")
    print(f"Downloaded {len(wanted)} files to {folder}")
    return sorted(wanted)

"""What each `acc` subcommand does; cli.py only parses arguments and reports errors.

Results go to stdout, progress and hints to stderr, so `acc dispatch ... |
grep` and `acc logs 12 > run.log` capture only what was asked for.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from acc_client.api import Api
from acc_client.credentials import Login
from acc_client.dag import reachable, tree_to_dag
from acc_client.errors import AccError
from acc_client.task import WKubeTask
from acc_client.upload import upload_job_folders

SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
POLL_FIRST, POLL_MAX = 0.5, 5.0
sleep = time.sleep  # tests replace it


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def connect() -> Api:
    login = Login()
    return Api(login.server_url, token=login.access_token, renew=login.renew, session=login.session)


# --- dispatch -------------------------------------------------------------------
def dispatch(project: str, variable: str, filename: str) -> int:
    """Import wkube.py from its own folder, upload job folders, POST the DAG; returns the root job id."""
    if not SLUG.match(project):
        raise AccError(f"{project!r} is not a project slug (letters, digits, '-', '_')")
    path = Path(filename).expanduser().resolve()
    if not path.is_file():
        raise AccError(f"workflow file not found: {path}")
    with _inside(path.parent):  # like accli: relative job folders are relative to wkube.py
        root = _load_task(path, variable)
        try:
            tree_to_dag(root)  # a broken graph fails before logging in or uploading anything
        except ValueError as exc:
            raise AccError(f"{variable}: {exc}") from None
        api = connect()
        code = upload_job_folders(api, project, reachable(root), report=err)
        dag = tree_to_dag(root, code)
    answer = api.post_json(f"/api/v1/aterm-cli/{project}/jobs/dispatch/", dag)
    return answer["job_id"]


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    sys.path.insert(0, str(folder))  # so wkube.py can import modules next to it
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)
        sys.path.remove(str(folder))


def _load_task(path: Path, variable: str) -> WKubeTask:
    spec = importlib.util.spec_from_file_location("acc_workflow", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        where = f" line {lines[-1]}" if lines else ""
        raise AccError(f"{path.name}{where}: {type(exc).__name__}: {exc}") from None
    if not hasattr(module, variable):
        raise AccError(f"{path.name} defines no variable {variable!r}")
    task = getattr(module, variable)
    if not isinstance(task, WKubeTask):
        raise AccError(
            f"{variable!r} in {path.name} is a {type(task).__module__}.{type(task).__name__}, not a WKubeTask "
            "from acc_client: use `from acc_client import WKubeTask`"
        )
    return task


# --- status ---------------------------------------------------------------------
def status(job_id: int) -> None:
    job = connect().get_json(f"/api/v1/jobs/{job_id}/")
    kind = "jobflow" if job.get("nodes") else "job"
    print(f"Job #{job['id']} {job.get('name') or ''!r} ({kind}, project {job.get('project')}): {job['status']}")
    if job.get("message"):
        print(f"  {job['message']}")
    if job.get("exit_code") is not None:
        print(f"  exit code {job['exit_code']}")
    nodes = job.get("nodes") or []
    if nodes:
        rows = [("NODE", "JOB", "NAME", "STATUS", "STARTED", "FINISHED", "REUSED_FROM")]
        for n in nodes:
            started, finished = _when(n.get("started_at")), _when(n.get("finished_at"))
            reused = n.get("reused_from")
            rows.append((n.get("node"), n.get("id"), n.get("name"), n.get("status"), started, finished, reused or "-"))
        print(_table(rows))


def _when(stamp: str | None) -> str:
    return stamp[:19].replace("T", " ") if stamp else "-"


def _table(rows: list[tuple]) -> str:
    cells = [[str("-" if c is None else c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


# --- logs -----------------------------------------------------------------------
def logs(job_id: int, *, follow: bool, max_wait: float) -> None:
    """Print chunks in seq order; with follow, poll until the job is final and its log complete."""
    api = connect()
    after, pause, waited, printed, checked = 0, POLL_FIRST, 0.0, False, False
    while True:
        page = api.get_json(f"/api/v1/jobs/{job_id}/logs/", params={"after_seq": after})
        chunks = page.get("chunks") or []
        if not chunks and not printed and not checked:
            checked = True
            if _explain_flow(api, job_id):
                return
        for chunk in chunks:
            sys.stdout.write(chunk["text"])
        sys.stdout.flush()
        printed = printed or bool(chunks)
        after = max(after, page.get("last_seq") or after)
        if page.get("complete") or (not follow and not chunks):
            return
        if chunks:  # more may be waiting right now: the server pages its answer
            pause = POLL_FIRST
            continue
        if waited >= max_wait:
            raise AccError(f"gave up following job #{job_id} after {max_wait:g} s (it is {page.get('status')})")
        sleep(pause)
        waited += pause
        pause = min(pause * 2, POLL_MAX)


def _explain_flow(api: Api, job_id: int) -> bool:
    """A jobflow's root has no log of its own; point at its nodes instead of waiting forever."""
    job = api.get_json(f"/api/v1/jobs/{job_id}/")
    nodes = job.get("nodes") or []
    if nodes:
        listing = ", ".join(f"{n.get('id')} ({n.get('node')})" for n in nodes)
        err(f"job #{job_id} is a jobflow; logs are per node: acc logs <JOB> with one of {listing}")
    return bool(nodes)


# --- cancel ---------------------------------------------------------------------
def cancel(job_id: int) -> None:
    job = connect().post_json(f"/api/v1/jobs/{job_id}/cancel/")
    print(f"Cancel requested for job #{job_id}: {job.get('status')}")

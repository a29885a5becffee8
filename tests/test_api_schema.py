"""schemathesis against the live /api/schema/: the API never answers 5xx and always answers as it documents.

The real `schemathesis` command runs against pytest-django's live server, twice: as alice with an accli
access token (header x-authorization) on a project that holds a routine, jobs, a jobflow, files and a hosted
model, and anonymously. Its checks: not_a_server_error, response_schema_conformance,
status_code_conformance and content_type_conformance, in every phase (coverage, fuzzing, stateful).

The run is deterministic (--generation-deterministic: the same cases every time, no example database), and
bounded: MAX_EXAMPLES cases per operation in the fuzzing phase, STATEFUL_EXAMPLES scenarios of at most
STATEFUL_STEPS calls. ACC_SCHEMATHESIS_EXAMPLES raises MAX_EXAMPLES for a longer hunt.

No operation is excluded: none starts long work here. Without a worker, jobs that valid bodies dispatch sit
QUEUED; the fixture cancels every job that is not final at the end.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

from accounts.services import issue_token_pair
from files import services as files
from routines import services as routines
from workers import dispatch

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
MAX_EXAMPLES = int(os.environ.get("ACC_SCHEMATHESIS_EXAMPLES", "8"))
# Without credentials every operation but the open ones (token exchange, jobstore upload) answers 401 before it
# looks at its input, so a few fuzzed cases per operation tell all; the open ones are fuzzed in full as alice.
ANONYMOUS_PHASES, ANONYMOUS_EXAMPLES = "fuzzing", 3
STATEFUL_EXAMPLES = 8
STATEFUL_STEPS = 4
CONFIG = f"""
[phases.stateful]
max-steps = {STATEFUL_STEPS}

[phases.stateful.generation]
max-examples = {STATEFUL_EXAMPLES}
"""
IMAGE = "acc-test/busybox:latest"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(transactional_db, alice, bob, project):
    """Project `demo` with data: a routine, a job, a jobflow, files and a public hosted model."""
    from hosting import services as hosting
    from jobs.models import Job
    from jobs.states import FINAL
    from workers.services import cancel_job

    task = {
        "name": "square",
        "job_kwargs": {"docker_image": IMAGE, "command": "echo $n", "conf": {"n": "2"}},
        "conf_schema": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}},
        "timeout": 120,
    }
    routine = routines.save_routine(project=project, user=alice, task=task, description="Squares n.")
    job = dispatch.run_routine(routine=routine, user=alice)
    flow = dispatch.dispatch_task_tree(
        project=project,
        user=alice,
        tree={
            "name": "flow",
            "is_holder_job": True,
            "children": [
                {"name": "a", "job_kwargs": {"docker_image": IMAGE, "command": "true"}},
                {"name": "b", "job_kwargs": {"docker_image": IMAGE, "command": "true"}},
            ],
        },
    )
    for relpath, data in (("data/a.csv", b"x,y\n1,2\n"), ("data/b.txt", b"hello"), ("readme.md", b"# demo")):
        files.write_file(project=project, relpath=relpath, stream=io.BytesIO(data))
    hosting.publish(
        user=alice,
        project_slug=project.slug,
        data={"slug": "square", "title": "Square", "policy": "public", "routine": routine.pk},
    )
    yield {"routine": routine, "job": job, "flow": flow}
    for left in Job.objects.exclude(status__in=FINAL).select_related("user").order_by("pk"):
        left.refresh_from_db()
        if left.status not in FINAL:
            cancel_job(job=left, user=left.user)
    assert not Job.objects.exclude(status__in=FINAL).exists()
    # the run may have used up the token endpoints' rate for this address: later tests start afresh
    for scope in django_settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES") or {}:
        cache.delete_many([f"throttle_{scope}_{address}" for address in ("127.0.0.1", "::1")])


def run_schemathesis(base_url: str, workdir: Path, *, headers=(), phases="", examples=MAX_EXAMPLES) -> tuple[int, str]:
    (workdir / "schemathesis.toml").write_text(CONFIG)
    args = [
        SCHEMATHESIS,
        "--config-file",
        str(workdir / "schemathesis.toml"),
        "run",
        f"{base_url}/api/schema/",
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--generation-deterministic",
        "--workers",
        "2",  # the live server answers one while the next is generated
        "--no-color",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "60",
    ]
    for header in headers:
        args += ["--header", header]
    if phases:
        args += ["--phases", phases]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=workdir)
    return proc.returncode, proc.stdout + proc.stderr


def totals(out: str) -> str:
    """The lines of schemathesis' summary that count operations, test cases and failures."""
    keep = re.findall(r"(?m)^ *(?:Selected|Tested|\d+ generated.*|❌ ST\d+.*)$", out)
    return " | ".join(line.strip() for line in keep)


@pytest.mark.parametrize("who", ["alice", "anonymous"])
def test_schemathesis_finds_no_server_error_and_no_answer_the_schema_does_not_document(
    live_server, world, alice, tmp_path, who
):
    if who == "alice":
        token = issue_token_pair(user=alice)["access_token"]
        code, out = run_schemathesis(live_server.url, tmp_path, headers=[f"x-authorization: {token}"])
    else:
        code, out = run_schemathesis(live_server.url, tmp_path, phases=ANONYMOUS_PHASES, examples=ANONYMOUS_EXAMPLES)
    print(f"schemathesis as {who}: {totals(out)}")
    assert code == 0, out[-15000:]
    assert re.search(r"Tested: +\d+", out), out[-3000:]


def test_the_schema_is_generated_without_guesswork_and_every_operation_documents_its_errors(api, alice):
    """Fast checks of what the schemathesis runs rely on; the runs themselves are the proof."""
    from drf_spectacular.drainage import GENERATOR_STATS

    GENERATOR_STATS.reset()
    schema = api(alice).get("/api/schema/", {"format": "json"}).json()
    assert not [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            documented_errors = {code for code in responses if code >= "400"}
            assert documented_errors, (method, path)
            for code in documented_errors:
                assert responses[code]["content"]["application/json"]["schema"] == error, (method, path, code)
            if "{" in path:
                assert "404" in responses, (method, path)
            if (
                path not in ("/api/v1/oauth/device/token/", "/api/v1/oauth/device/access-token/")
                and "jobstore/upload" not in path
                and "xet-cas/v1/fetch" not in path  # a signed URL, like the jobstore upload: no credentials
            ):
                assert {"401", "403"} <= set(responses), (method, path)
    job = schema["components"]["schemas"]["Job"]["properties"]
    assert job["flow_root"]["nullable"] and job["finished_at"]["nullable"] and job["routine"]["nullable"]
    assert schema["components"]["schemas"]["HostedRun"]["properties"]["finished_at"]["nullable"]
    assert set(schema["paths"]["/api/v1/jobs/{id}/cancel/"]["post"]["responses"]) >= {"200", "202"}

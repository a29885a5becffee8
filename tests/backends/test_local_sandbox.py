"""The `local` backend runs a job in a sandbox: an unprivileged user that sees its own folders and nothing else.

A job may not read other projects' files or the storage, the platform's processes or their environment,
reach the network, or hold more memory than it asked for; without a sandbox it is refused unless the
operator says otherwise. Inputs and outputs still map, and an output that is a symlink never carries a
host file out.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from django.conf import settings

from files import services as files
from jobs.models import JobOutput
from routines.models import Membership, Project, Role
from tests.conftest import _test_db_url, wait_for_status
from tests.workers.test_jobs import log_text, make_routine, run

SECRET = "top-secret-of-another-project"


def other_projects_file(alice) -> Path:
    """A file of a project alice's jobs have nothing to do with, and where it lives on the host."""
    other = Project.objects.create(slug="other", name="Other")
    Membership.objects.create(project=other, user=alice, role=Role.OWNER)
    files.write_file(project=other, relpath="private/secret.txt", stream=io.BytesIO(SECRET.encode()))
    return Path(settings.MEDIA_ROOT) / "projects" / str(other.pk) / "private" / "secret.txt"


def test_a_local_job_reads_no_other_projects_file_and_sees_no_storage(start_worker, api, project, alice):
    start_worker("local")
    target = other_projects_file(alice)
    assert target.read_text() == SECRET
    # the same path from the job's own folder (jobs/<id>/root/code), whatever its id
    climb = os.path.relpath(target, settings.ACC_JOBS_DIR / "0" / "root" / "code")
    command = (
        'cat "$CLIMB" "$TARGET" 2>/dev/null; '
        'ls "$STORAGE" 2>/dev/null && echo STORAGE-VISIBLE; ls "$JOBS" 2>/dev/null && echo JOBS-VISIBLE; '
        "echo end-of-probe"
    )
    conf = {"CLIMB": climb, "TARGET": str(target), "STORAGE": str(settings.MEDIA_ROOT)}
    conf["JOBS"] = str(settings.ACC_JOBS_DIR)
    job = wait_for_status(run(api, alice, make_routine(project, alice, command, conf=conf)), {"SUCCEEDED", "FAILED"})
    text = log_text(api, alice, job.pk)
    assert "end-of-probe" in text
    assert SECRET not in text
    assert "STORAGE-VISIBLE" not in text and "JOBS-VISIBLE" not in text


def test_a_local_job_sees_no_platform_process_nor_its_environment(start_worker, api, project, alice):
    worker = start_worker("local")
    command = (
        'cat "/proc/$WORKER_PID/environ" "/proc/$TEST_PID/environ" 2>/dev/null | tr "\\0" "\\n"; '
        'for f in /proc/[0-9]*/environ; do tr "\\0" "\\n" < "$f"; done 2>/dev/null; '
        "env; echo end-of-probe"
    )
    conf = {"WORKER_PID": str(worker.proc.pid), "TEST_PID": str(os.getpid())}
    job = wait_for_status(run(api, alice, make_routine(project, alice, command, conf=conf)), {"SUCCEEDED", "FAILED"})
    text = log_text(api, alice, job.pk)
    assert "end-of-probe" in text
    for leaked in (_test_db_url(), "DATABASE_URL=", "REDIS_URL=", "SECRET_KEY=", "DJANGO_SETTINGS_MODULE="):
        assert leaked not in text


def test_a_local_job_runs_as_an_unprivileged_user_without_network(start_worker, api, project, alice):
    start_worker("local")
    probe = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 5432), timeout=3).close()\n"
        "    print('network: CONNECTED')\n"
        "except OSError as exc:\n"
        "    print('network: refused', type(exc).__name__)\n"
    )
    command = 'echo "uid=$(id -u) gid=$(id -g)"; python3 -c "$PROBE"; touch /usr/x 2>/dev/null && echo USR-WRITABLE; :'
    routine = make_routine(project, alice, command, conf={"PROBE": probe})
    job = wait_for_status(run(api, alice, routine), {"SUCCEEDED", "FAILED"})
    text = log_text(api, alice, job.pk)
    assert job.status == "SUCCEEDED", text
    assert "uid=" in text and "uid=0 " not in text and "gid=0\n" not in text
    assert "network: refused" in text and "CONNECTED" not in text
    assert "USR-WRITABLE" not in text


def test_a_local_job_over_its_memory_is_said_to_be_out_of_memory(start_worker, api, project, alice):
    start_worker("local")
    routine = make_routine(
        project,
        alice,
        "python3 -c 'x = bytearray(400 * 1024 * 1024); print(\"allocated\", len(x))'",
        required_ram=64 * 1024 * 1024,
    )
    job = wait_for_status(run(api, alice, routine), {"SUCCEEDED", "FAILED"}, timeout=60)
    assert job.status == "FAILED" and job.error_code == "oom", (job.status, job.message)
    assert "Out of memory" in job.message and "64 MiB" in job.message
    assert "allocated" not in log_text(api, alice, job.pk)


def test_without_a_sandbox_a_job_is_refused_unless_the_operator_allows_it(start_worker, api, project, alice):
    worker = start_worker("local", extra_env={"ACC_LOCAL_BWRAP": "/nonexistent/bwrap"})
    routine = make_routine(project, alice, "echo ran-unsandboxed")
    job = wait_for_status(run(api, alice, routine), {"SUCCEEDED", "FAILED"})
    assert job.status == "FAILED", "no sandbox: the job must not run"
    assert "sandbox" in job.message and "ACC_LOCAL_UNSANDBOXED_UNSAFE" in job.message
    assert "/nonexistent/bwrap" in job.message
    assert "ran-unsandboxed" not in log_text(api, alice, job.pk)
    worker.stop()

    start_worker("local", extra_env={"ACC_LOCAL_BWRAP": "/nonexistent/bwrap", "ACC_LOCAL_UNSANDBOXED_UNSAFE": "true"})
    routine = make_routine(project, alice, "echo ran-unsandboxed", name="unsafe")
    job = wait_for_status(run(api, alice, routine), {"SUCCEEDED", "FAILED"})
    text = log_text(api, alice, job.pk)
    assert job.status == "SUCCEEDED" and "ran-unsandboxed" in text, (job.message, text)
    assert "without a sandbox" in text, "the log says the job was not isolated"


def test_inputs_and_outputs_still_map_and_a_symlink_carries_no_host_file_out(start_worker, api, project, alice):
    start_worker("local")
    target = other_projects_file(alice)
    files.write_file(project=project, relpath="in/data.txt", stream=io.BytesIO(b"hello input\n"))
    command = (
        "cat data/data.txt && echo changed >> data/data.txt && mkdir -p out && "
        "cp data/data.txt out/copy.txt && "
        'ln -s "$TARGET" out/leak.txt && ln -s "$(dirname "$TARGET")" out/leakdir && '
        'ln -s "$TARGET" single.txt && ln -s "$(dirname "$TARGET")" dirlink'
    )
    conf = {
        "TARGET": str(target),
        "input_mappings": "acc://demo/in/data.txt:/code/data/data.txt",
        "output_mappings": "/code/out/:acc://demo/results/;/code/single.txt:acc://demo/single.txt;"
        "/code/dirlink/secret.txt:acc://demo/through-link.txt",
    }
    job = wait_for_status(run(api, alice, make_routine(project, alice, command, conf=conf)), {"SUCCEEDED", "FAILED"})
    text = log_text(api, alice, job.pk)
    assert "hello input" in text
    stored = set(JobOutput.objects.filter(job_id=job.pk).values_list("path", flat=True))
    assert "results/copy.txt" in stored, text
    copy = files.open_file(project=project, relpath="results/copy.txt")
    assert copy.read() == b"hello input\nchanged\n"
    for path in stored:
        assert SECRET.encode() not in files.open_file(project=project, relpath=path).read(), path
    assert not {"single.txt", "through-link.txt", "results/leak.txt"} & stored
    assert job.status == "FAILED" and job.error_code == "output", "the links are refused, and said so"

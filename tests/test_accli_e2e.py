"""The real `accli==2.0.14` against a live server: login with a web code, dispatch on Docker."""

import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from jobs.models import Job
from routines.models import BaseStack
from tests.conftest import ACCLI, wait_for_status
from tests.kube_fixtures import IMAGE_BACKENDS

pytestmark = pytest.mark.docker


def dispatch(home: Path, folder: Path, variable: str = "task") -> int:
    result = subprocess.run(
        [ACCLI, "dispatch", "demo", variable, "-f", "wkube.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return int(re.search(r"Dispatched root job #ID: (\d+)", result.stdout).group(1))


def write_folder(folder: Path, wkube: str, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wkube.py").write_text(textwrap.dedent(wkube))
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def logs_of(api, user, job_id) -> str:
    return "".join(c["text"] for c in api(user).get(f"/api/v1/jobs/{job_id}/logs/").json()["chunks"])


MAIN = """
    import os, pathlib
    print("hello from the job", flush=True)
    data = pathlib.Path("input/numbers.txt").read_text().split()
    print("read", len(data), "numbers", flush=True)
    os.makedirs("out", exist_ok=True)
    pathlib.Path("out/sum.txt").write_text(str(sum(map(int, data))) + "\\n")
    print("wrote the sum", flush=True)
"""
RESOURCES = (
    "required_cores=1, required_ram=256 * 1024 * 1024, required_storage_local=1024 ** 3, "
    "required_storage_workflow=1024 ** 3, timeout=300"
)


@pytest.mark.parametrize("backend", IMAGE_BACKENDS)
def test_accli_dispatches_a_job_folder_on_a_base_stack(backend, accli_home, tmp_path, start_worker, api, alice):
    BaseStack.objects.create(
        name="PYTHON3_7",
        image="acc-test/python:latest",
        workdir="/code",
        install_command="if [ -f requirements.txt ]; then echo no pip here; exit 1; fi",
    )
    put = api(alice).put(
        "/api/v1/projects/demo/files/inputs/numbers.txt", b"1 2 3 4\n", content_type="application/octet-stream"
    )
    assert put.status_code == 201
    start_worker(backend)
    folder = write_folder(
        tmp_path / "job",
        f"""
        from accli import WKubeTask
        task = WKubeTask(name="summer", job_folder="./", base_stack="PYTHON3_7", command="python main.py",
                         conf={{"input_mappings": "acc://demo/inputs/:/code/input/",
                                "output_mappings": "/code/out/:acc://demo/outputs/"}}, {RESOURCES})
    """,
        {"main.py": MAIN},
    )
    job_id = dispatch(accli_home, folder)
    job = wait_for_status(job_id, {"SUCCEEDED", "FAILED"}, timeout=120)
    text = logs_of(api, alice, job_id)
    assert job.status == "SUCCEEDED", text + job.message
    assert "hello from the job" in text and "read 4 numbers" in text
    assert job.building_at is not None, "a base stack is built in the BUILDING phase"
    download = api(alice).get("/api/v1/projects/demo/files/outputs/sum.txt")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"10\n"


def test_accli_dispatches_a_docker_image(accli_home, tmp_path, start_worker, api, alice):
    start_worker("docker")
    folder = write_folder(
        tmp_path / "img",
        f"""
        from accli import WKubeTask
        task = WKubeTask(name="image only", docker_image="acc-test/busybox:latest",
                         command="echo from-an-image; echo $GREETING", conf={{"GREETING": "bonjour"}}, {RESOURCES})
    """,
        {},
    )
    job = wait_for_status(dispatch(accli_home, folder), {"SUCCEEDED", "FAILED"}, timeout=60)
    text = logs_of(api, alice, job.pk)
    assert job.status == "SUCCEEDED", text
    assert "from-an-image" in text and "bonjour" in text


@pytest.mark.parametrize("backend", IMAGE_BACKENDS)
def test_accli_dispatches_a_dockerfile_and_reports_build_errors(
    backend, accli_home, tmp_path, start_worker, api, alice
):
    start_worker(backend)
    folder = write_folder(
        tmp_path / "df",
        f"""
        from accli import WKubeTask
        task = WKubeTask(name="dockerfile", job_folder="./", docker_filename="Dockerfile",
                         command="cat /opt/baked.txt", {RESOURCES})
    """,
        {
            "Dockerfile": """
        FROM acc-test/busybox:latest
        RUN mkdir -p /opt && echo baked-into-the-image > /opt/baked.txt
    """
        },
    )
    job = wait_for_status(dispatch(accli_home, folder), {"SUCCEEDED", "FAILED"}, timeout=120)
    text = logs_of(api, alice, job.pk)
    assert job.status == "SUCCEEDED", text + job.message
    assert "baked-into-the-image" in text

    broken = write_folder(
        tmp_path / "broken",
        f"""
        from accli import WKubeTask
        task = WKubeTask(name="broken build", job_folder="./", docker_filename="Dockerfile",
                         command="true", {RESOURCES})
    """,
        {
            "Dockerfile": """
        FROM acc-test/busybox:latest
        RUN echo about-to-fail && exit 7
    """
        },
    )
    failed = wait_for_status(dispatch(accli_home, broken), {"SUCCEEDED", "FAILED"}, timeout=120)
    assert failed.status == "FAILED" and failed.error_code == "build"
    assert "Traceback" not in failed.message
    assert "about-to-fail" in logs_of(api, alice, failed.pk), "the builder's output is in the job's log"
    assert Job.objects.get(pk=failed.pk).running_at is None

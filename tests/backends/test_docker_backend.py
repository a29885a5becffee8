"""The Docker backend against the real engine (`scripts/services.sh` starts it and builds acc-test/*)."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
import urllib.request
import uuid
from pathlib import Path

import docker
import pytest

from backends.base import (
    BackendError,
    BuildCancelled,
    BuildFailed,
    BuildSpec,
    BuildTimedOut,
    Exit,
    ImageNotFound,
    JobSpec,
)

pytestmark = pytest.mark.docker

BUSYBOX = "acc-test/busybox:latest"
PYTHON = "acc-test/python:latest"
# Far above any id the database hands out, so these never meet a real job's container.
_IDS = itertools.count(990_000_000 + random.randrange(1_000_000) * 100)


@pytest.fixture
def make_spec(docker_backend, docker_client, tmp_path):
    """make_spec(command, **fields) -> a JobSpec with a fresh job id; its containers and pipes go at teardown."""
    made: list[JobSpec] = []

    def make(command: str, **fields) -> JobSpec:
        job_id = next(_IDS)
        host = tmp_path / str(job_id)
        (host / "root").mkdir(parents=True)
        fields.setdefault("image", BUSYBOX)
        fields.setdefault("workdir", "/code")
        fields.setdefault("ram", 128 * 1024**2)
        spec = JobSpec(job_id=job_id, command=command, host_dir=host, root_dir=host / "root", **fields)
        made.append(spec)
        return spec

    yield make
    for spec in made:
        docker_backend.stop_by_id(spec.job_id, grace=0)
        if spec.pipe:
            docker_backend.remove_pipe(spec.pipe)


def run(backend, spec: JobSpec, timeout: float = 60) -> tuple[dict, Exit, bytes]:
    state = backend.start(spec)
    exit_ = backend.wait(state, timeout)
    assert exit_ is not None, "the job did not end in time"
    return state, exit_, b"".join(backend.logs(state))


def job_containers(client, job_id: int) -> list:
    return client.containers.list(all=True, filters={"label": f"acc.job={job_id}"})


# --- running -------------------------------------------------------------------
def test_logs_have_stdout_and_stderr_and_wait_returns_exit_0(docker_backend, make_spec):
    spec = make_spec("for i in 1 2 3; do echo out-$i; echo err-$i >&2; done")
    state, exit_, output = run(docker_backend, spec)
    assert exit_ == Exit(0)
    for line in [b"out-1", b"out-2", b"out-3", b"err-1", b"err-2", b"err-3"]:
        assert line in output
    assert json.loads(json.dumps(state)) == state


def test_root_dir_is_in_the_container_before_start_with_modes(docker_backend, make_spec):
    spec = make_spec("cat input/a.txt && ./run.sh")
    code = spec.root_dir / "code"
    (code / "input").mkdir(parents=True)
    (code / "input" / "a.txt").write_text("hello from the host\n")
    (code / "run.sh").write_text("#!/bin/sh\necho script ran\n")
    (code / "run.sh").chmod(0o755)
    _, exit_, output = run(docker_backend, spec)
    assert exit_ == Exit(0), output
    assert b"hello from the host" in output and b"script ran" in output


def test_env_vars_are_visible(docker_backend, make_spec):
    spec = make_spec('echo "A=$ACC_A B=$ACC_B"', env={"ACC_A": "one", "ACC_B": "two words"})
    _, _, output = run(docker_backend, spec)
    assert b"A=one B=two words" in output


def test_network_none_has_no_interface_but_loopback(docker_backend, docker_client, make_spec):
    spec = make_spec("cat /proc/net/dev", network="none")
    state, exit_, output = run(docker_backend, spec)
    assert exit_ == Exit(0)
    assert b"lo:" in output and b"eth0" not in output
    assert docker_client.containers.get(state["id"]).attrs["HostConfig"]["NetworkMode"] == "none"


def test_failing_command_reports_its_exit_code(docker_backend, make_spec):
    _, exit_, _ = run(docker_backend, make_spec("exit 3"))
    assert exit_ == Exit(3)


def test_start_is_idempotent(docker_backend, docker_client, make_spec):
    spec = make_spec("sleep 30")
    first = docker_backend.start(spec)
    second = docker_backend.start(spec)
    assert first == second
    assert len(job_containers(docker_client, spec.job_id)) == 1


def test_start_replaces_a_container_that_was_created_but_never_started(docker_backend, docker_client, make_spec):
    """A worker that died between create and start leaves a half-prepared container: it is not reused."""
    spec = make_spec("echo fresh run")
    docker_client.containers.create(BUSYBOX, ["echo", "stale"], name=spec.name, labels={"acc.job": str(spec.job_id)})
    _, exit_, output = run(docker_backend, spec)
    assert exit_ == Exit(0) and output == b"fresh run\n"
    assert len(job_containers(docker_client, spec.job_id)) == 1


def test_logs_follow_a_running_job_until_it_ends_and_wait_none_blocks(docker_backend, make_spec):
    state = docker_backend.start(make_spec("echo first; sleep 1; echo second"))
    chunks = iter(docker_backend.logs(state))
    assert next(chunks) == b"first\n"
    assert docker_backend.wait(state, 0) is None  # we read "first" while it still runs
    assert b"".join(chunks) == b"second\n"
    assert docker_backend.wait(state, None) == Exit(0)
    assert docker_backend.wait(state, 0) == Exit(0)


def test_start_with_a_missing_image_raises_image_not_found(docker_backend, docker_client, make_spec):
    spec = make_spec("true", image="acc-test/no-such-image:1.0")
    with pytest.raises(ImageNotFound, match="acc-test/no-such-image:1.0"):
        docker_backend.start(spec)
    assert job_containers(docker_client, spec.job_id) == []


def test_start_on_a_missing_network_fails_clearly_and_leaves_nothing(docker_backend, docker_client, make_spec):
    spec = make_spec("true", network="acc-no-such-network")
    with pytest.raises(BackendError, match="acc-no-such-network"):
        docker_backend.start(spec)
    assert job_containers(docker_client, spec.job_id) == []


def test_oom_is_reported(docker_backend, make_spec):
    spec = make_spec("python -c 'b = b\"x\" * (512 * 1024 * 1024)'", image=PYTHON, ram=64 * 1024**2)
    _, exit_, _ = run(docker_backend, spec)
    assert exit_.oom_killed is True
    assert exit_.exit_code != 0


# --- timeouts and stopping -------------------------------------------------------
def test_wait_times_out_then_stop_and_cleanup_leave_no_container(docker_backend, docker_client, make_spec):
    spec = make_spec("sleep 30")
    state = docker_backend.start(spec)
    started = time.monotonic()
    assert docker_backend.wait(state, 1) is None
    assert 0.9 <= time.monotonic() - started < 5
    assert docker_backend.wait(state, 0) is None
    docker_backend.stop(state, grace=1)
    assert docker_backend.wait(state, 10) is not None
    docker_backend.cleanup(state)
    assert job_containers(docker_client, spec.job_id) == []
    docker_backend.cleanup(state)  # twice is fine


def test_stop_cleanup_and_logs_of_a_missing_container_are_noops(docker_backend):
    state = {"name": "acc-job-989999999", "job_id": 989999999}
    docker_backend.stop(state, grace=1)
    docker_backend.cleanup(state)
    docker_backend.stop_by_id(989999999)
    assert list(docker_backend.logs(state)) == []
    assert docker_backend.wait(state, 1) == Exit(-1)


def test_running_job_ids_lists_started_jobs(docker_backend, make_spec):
    specs = [make_spec("sleep 30"), make_spec("true")]
    for spec in specs:
        docker_backend.start(spec)
    assert {s.job_id for s in specs} <= docker_backend.running_job_ids()
    docker_backend.stop_by_id(specs[0].job_id, grace=0)
    assert specs[0].job_id not in docker_backend.running_job_ids()


# --- export ----------------------------------------------------------------------
@pytest.mark.parametrize("exit_code", [0, 3])
def test_export_folder_and_file_after_exit(docker_backend, make_spec, tmp_path, exit_code):
    spec = make_spec(
        "mkdir -p out/sub && echo one > out/a.txt && echo two > out/sub/b.txt && "
        f"printf '#!/bin/sh\\n' > out/tool.sh && chmod 755 out/tool.sh && echo solo > single.txt; exit {exit_code}"
    )
    state, exit_, _ = run(docker_backend, spec)
    assert exit_ == Exit(exit_code)
    folder, single = tmp_path / "folder", tmp_path / "single"
    assert docker_backend.export(state, "/code/out", folder) is True
    assert (folder / "a.txt").read_text() == "one\n"
    assert (folder / "sub" / "b.txt").read_text() == "two\n"
    assert os.access(folder / "tool.sh", os.X_OK)
    assert docker_backend.export(state, "/code/single.txt", single) is True
    assert sorted(p.name for p in single.iterdir()) == ["single.txt"]
    assert (single / "single.txt").read_text() == "solo\n"


def test_export_of_a_missing_path_returns_false(docker_backend, make_spec, tmp_path):
    state, _, _ = run(docker_backend, make_spec("true"))
    assert docker_backend.export(state, "/code/nope", tmp_path / "x") is False


def test_export_keeps_links_inside_and_drops_links_leaving_dest(docker_backend, make_spec, tmp_path):
    spec = make_spec(
        "mkdir out && echo data > out/real && ln -s real out/inside && ln -s /etc/passwd out/abs "
        "&& ln -s ../../../../etc/passwd out/up && ln out/real out/hard"
    )
    state, exit_, output = run(docker_backend, spec)
    assert exit_ == Exit(0), output
    dest = tmp_path / "dest"
    assert docker_backend.export(state, "/code/out", dest) is True
    assert (dest / "inside").read_text() == "data\n" and (dest / "hard").read_text() == "data\n"
    assert not (dest / "abs").exists() and not (dest / "abs").is_symlink()
    assert not (dest / "up").is_symlink()


# --- workflow volume -------------------------------------------------------------
def test_jobs_with_the_same_pipe_share_it_and_remove_pipe_removes_it(docker_backend, docker_client, make_spec):
    pipe = f"acc-test-pipe-{uuid.uuid4().hex[:12]}"
    writer = make_spec("echo from-first > /mnt/pipe/shared.txt", pipe=pipe)
    reader = make_spec("cat /mnt/pipe/shared.txt", pipe=pipe)
    assert run(docker_backend, writer)[1] == Exit(0)
    _, exit_, output = run(docker_backend, reader)
    assert exit_ == Exit(0) and b"from-first" in output
    assert docker_client.volumes.get(pipe).attrs["Labels"]["acc.managed"] == "1"
    for spec in (writer, reader):
        docker_backend.stop_by_id(spec.job_id, grace=0)
    docker_backend.remove_pipe(pipe)
    assert docker_client.volumes.list(filters={"name": pipe}) == []
    docker_backend.remove_pipe(pipe)  # idempotent


# --- interactive endpoint --------------------------------------------------------
def test_endpoint_is_reachable_on_the_jobs_network(docker_backend, make_spec):
    spec = make_spec("mkdir -p www && echo served > www/index.html && httpd -f -p 8080 -h www", network="acc-jobs")
    state = docker_backend.start(spec)
    address = docker_backend.endpoint(state)
    assert address
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}:8080/index.html", timeout=2) as response:
                assert response.read() == b"served\n"
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert docker_backend.endpoint({**state, "network": "none"}) is None


# --- images ----------------------------------------------------------------------
def test_resolve_image_returns_the_local_image_id(docker_backend, docker_client):
    assert docker_backend.resolve_image(BUSYBOX) == docker_client.images.get(BUSYBOX).id
    assert docker_backend.resolve_image(BUSYBOX).startswith("sha256:")


def test_resolve_image_of_a_missing_image_fails_quickly_and_clearly(docker_backend):
    started = time.monotonic()
    with pytest.raises(ImageNotFound, match="acc-test/no-such-image:1.0 is not on this Docker engine"):
        docker_backend.resolve_image("acc-test/no-such-image:1.0")
    assert time.monotonic() - started < 10
    with pytest.raises(ImageNotFound, match="Not An Image"):
        docker_backend.resolve_image("Not An Image")


def test_resolve_image_without_pulling_says_so(docker_client):
    from backends.docker import DockerBackend

    with pytest.raises(ImageNotFound, match="pulling is disabled"):
        DockerBackend(pull_timeout=0).resolve_image("acc-test/no-such-image:1.0")


@pytest.fixture
def build_tags(docker_client):
    """build_tags() -> a fresh image tag; those images and the untagged leftovers of failed builds go at teardown."""
    tags: list[str] = []
    dangling_before = {i.id for i in docker_client.images.list(filters={"dangling": True})}
    BUILD_LOGS.clear()

    def make() -> str:
        tags.append(f"acc-build/test-{uuid.uuid4().hex[:16]}:latest")
        return tags[-1]

    yield make
    # Failed and abandoned builds leave untagged step images (the classic builder keeps them as cache). Only those
    # this test's builds made go (the builder names each step's image in the log: " ---> <12 hex digits>"): other
    # builds run on this engine meanwhile (other xdist workers, other test runs), and removing the step image of a
    # build in progress fails it ("No such image").
    made = {m for log in BUILD_LOGS for m in re.findall(r"^ ---> ([0-9a-f]{12})$", log.text, flags=re.M)}
    leftovers = [
        i.id
        for i in docker_client.images.list(filters={"dangling": True})
        if i.id not in dangling_before and i.id.removeprefix("sha256:")[:12] in made
    ]
    for image in tags + leftovers:
        try:
            docker_client.images.remove(image, force=True)
        except docker.errors.APIError:
            pass


BUILD_LOGS: list[Log] = []  # the Logs of the running test (build_tags reads the step images of its builds there)


class Log:
    def __init__(self):
        self.lines: list[str] = []
        BUILD_LOGS.append(self)

    def __call__(self, text: str) -> None:
        self.lines.append(text)

    @property
    def text(self) -> str:
        return "".join(self.lines)


def base_stack(folder: Path, tag: str, **fields) -> BuildSpec:
    fields.setdefault("timeout", 120)
    return BuildSpec(kind="base_stack", context_dir=folder, tag=tag, base_image=PYTHON, workdir="/code", **fields)


def output_of(client, image: str, command: str) -> bytes:
    return client.containers.run(image, ["/bin/sh", "-c", command], remove=True, network_mode="none")


def test_base_stack_build_copies_the_folder_then_caches_and_force_rebuilds(
    docker_backend, docker_client, build_tags, tmp_path
):
    (tmp_path / "main.py").write_text("print('built code runs')\n")
    (tmp_path / "ignored.log").write_text("x")
    (tmp_path / ".dockerignore").write_text("*.log\n")
    spec = base_stack(tmp_path, build_tags(), install_command="echo installed > /code/installed.txt")
    log = Log()
    image_id = docker_backend.build(spec, log=log, should_stop=lambda: False)
    assert "Step" in log.text and image_id.startswith("sha256:")
    listing = output_of(docker_client, spec.tag, "pwd; ls -a /code; cat installed.txt; python main.py").decode()
    assert listing.startswith("/code\n")
    assert "main.py" in listing and "built code runs" in listing and "installed" in listing
    assert "ignored.log" not in listing and ".acc.Dockerfile" not in listing

    again = Log()
    assert docker_backend.build(spec, log=again, should_stop=lambda: False) == image_id
    assert "cached image" in again.text and "Step" not in again.text

    forced = Log()
    rebuilt = docker_backend.build(
        base_stack(tmp_path, spec.tag, install_command=spec.install_command, force=True),
        log=forced,
        should_stop=lambda: False,
    )
    assert "Step" in forced.text and "Using cache" not in forced.text
    assert rebuilt != image_id


def test_docker_filename_build_uses_the_folders_dockerfile(docker_backend, docker_client, build_tags, tmp_path):
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile.acc").write_text(
        f"FROM {BUSYBOX}\nWORKDIR /app\nCOPY hello.txt .\nRUN echo built > built.txt\n"
    )
    (tmp_path / "hello.txt").write_text("hello\n")
    spec = BuildSpec(
        kind="docker_filename", context_dir=tmp_path, tag=build_tags(), timeout=60, dockerfile="docker/Dockerfile.acc"
    )
    docker_backend.build(spec, log=Log(), should_stop=lambda: False)
    assert output_of(docker_client, spec.tag, "pwd; cat hello.txt built.txt") == b"/app\nhello\nbuilt\n"


@pytest.mark.parametrize("dockerfile", ["../outside/Dockerfile", "/etc/passwd", "missing/Dockerfile"])
def test_docker_filename_outside_or_missing_is_a_build_failure(docker_backend, build_tags, tmp_path, dockerfile):
    (tmp_path / "ctx").mkdir()
    spec = BuildSpec(
        kind="docker_filename", context_dir=tmp_path / "ctx", tag=build_tags(), timeout=60, dockerfile=dockerfile
    )
    with pytest.raises(BuildFailed, match="Dockerfile"):
        docker_backend.build(spec, log=Log(), should_stop=lambda: False)


def test_failing_run_raises_build_failed_with_the_builders_error(docker_backend, build_tags, tmp_path):
    spec = base_stack(tmp_path, build_tags(), install_command="echo about to fail; exit 7")
    log = Log()
    with pytest.raises(BuildFailed) as raised:
        docker_backend.build(spec, log=log, should_stop=lambda: False)
    assert "returned a non-zero code: 7" in str(raised.value)
    assert "Traceback" not in str(raised.value)
    assert "about to fail" in log.text


def test_build_timeout_raises_build_timed_out_and_stops_the_build(docker_backend, docker_client, build_tags, tmp_path):
    sleep = long_sleep()
    spec = base_stack(tmp_path, build_tags(), install_command=sleep, timeout=2)
    started = time.monotonic()
    with pytest.raises(BuildTimedOut):
        docker_backend.build(spec, log=Log(), should_stop=lambda: False)
    assert time.monotonic() - started < 10
    assert_no_build_container_left(docker_client, sleep)


def test_should_stop_cancels_the_build(docker_backend, docker_client, build_tags, tmp_path):
    sleep = long_sleep()
    spec = base_stack(tmp_path, build_tags(), install_command=sleep)
    started = time.monotonic()
    with pytest.raises(BuildCancelled):
        docker_backend.build(spec, log=Log(), should_stop=lambda: time.monotonic() - started > 1.5)
    assert time.monotonic() - started < 10
    assert_no_build_container_left(docker_client, sleep)


def long_sleep() -> str:
    """An install command that outlasts the test, told apart from the RUN steps of other builds on the engine
    (the sibling test may be running at the same time on another xdist worker)."""
    return f"sleep 60 # {uuid.uuid4().hex}"


def assert_no_build_container_left(client, command: str, timeout: float = 15) -> None:
    """The engine noticed the client leave: the RUN container of the abandoned build goes away."""
    deadline = time.monotonic() + timeout
    while True:
        running = [c for c in client.containers.list() if command in " ".join(c.attrs["Config"]["Cmd"] or [])]
        if not running:
            return
        assert time.monotonic() < deadline, f"build containers still running: {running}"
        time.sleep(0.2)

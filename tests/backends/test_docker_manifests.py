"""The container and Dockerfile the Docker backend asks for: plain asserts, then once against the engine."""

from pathlib import Path

import pytest

from backends import manifests
from backends.base import JobSpec


def make_spec(**overrides) -> JobSpec:
    fields = dict(
        job_id=42,
        command="echo hi && ls",
        workdir="/code",
        host_dir=Path("/nonexistent/42"),
        root_dir=Path("/nonexistent/42/root"),
        image="acc-test/busybox:latest",
        env={"A": "1", "B": "two words"},
        pipe="acc-pipe-job-42",
        cores=1.5,
        ram=256 * 1024**2,
        network="none",
        labels={"acc.project": "demo"},
    )
    fields.update(overrides)
    return JobSpec(**fields)


def test_container_kwargs_name_command_and_environment():
    kwargs = manifests.container_kwargs(make_spec())
    assert kwargs["name"] == "acc-job-42"
    assert kwargs["image"] == "acc-test/busybox:latest"
    assert kwargs["command"] == ["/bin/sh", "-c", "echo hi && ls"]
    assert kwargs["working_dir"] == "/code"
    assert kwargs["environment"] == {"A": "1", "B": "two words"}


def test_labels_carry_job_id_and_spec_labels_but_ours_win():
    spec = make_spec(labels={"acc.project": "demo", "acc.job": "999", "acc.managed": "0"})
    assert manifests.container_kwargs(spec)["labels"] == {"acc.project": "demo", "acc.managed": "1", "acc.job": "42"}


def test_resource_limits_and_isolation():
    kwargs = manifests.container_kwargs(make_spec(), pids_limit=77)
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 256 * 1024**2
    assert kwargs["nano_cpus"] == 1_500_000_000
    assert kwargs["pids_limit"] == 77
    assert kwargs["privileged"] is False
    assert kwargs["security_opt"] == ["no-new-privileges"]
    assert kwargs["network_mode"] == "none"


def test_cpu_quota_is_capped_at_the_engines_cores():
    assert manifests.container_kwargs(make_spec(cores=8), max_cores=2)["nano_cpus"] == 2_000_000_000
    assert manifests.nano_cpus(0) == 10_000_000


def test_only_mount_is_the_named_workflow_volume():
    kwargs = manifests.container_kwargs(make_spec())
    assert kwargs["mounts"] == [
        {"Type": "volume", "Source": "acc-pipe-job-42", "Target": "/mnt/pipe", "ReadOnly": False}
    ]
    assert "volumes" not in kwargs and "binds" not in kwargs
    assert manifests.container_kwargs(make_spec(pipe=None))["mounts"] == []


@pytest.mark.parametrize("pipe", ["/etc", "../x", "a/b", "", "-x", "x"])
def test_pipe_names_that_could_be_host_paths_are_refused(pipe):
    with pytest.raises(ValueError):
        manifests.container_kwargs(make_spec(pipe=pipe or "/"))


def test_pipe_volume_is_labelled_managed():
    assert manifests.pipe_volume_kwargs("acc-pipe-job-42") == {
        "name": "acc-pipe-job-42",
        "labels": {"acc.managed": "1", "acc.pipe": "acc-pipe-job-42"},
    }


def test_empty_workdir_keeps_the_images_own_and_network_falls_back():
    kwargs = manifests.container_kwargs(make_spec(workdir="", network=""), network="acc-jobs")
    assert kwargs["working_dir"] is None
    assert kwargs["network_mode"] == "acc-jobs"


def test_a_job_without_image_is_refused():
    with pytest.raises(ValueError, match="needs an image"):
        manifests.container_kwargs(make_spec(image=None))


def test_base_stack_dockerfile():
    text = manifests.base_stack_dockerfile(
        base_image="acc-test/python:latest", workdir="/code", install_command="pip install -r requirements.txt"
    )
    assert text == (
        "FROM acc-test/python:latest\n"
        "WORKDIR /code\n"
        'COPY [".", "/code"]\n'
        'RUN ["/bin/sh", "-c", "pip install -r requirements.txt"]\n'
    )


def test_base_stack_dockerfile_without_install_has_no_run_and_keeps_odd_commands_intact():
    assert "RUN" not in manifests.base_stack_dockerfile(base_image="b", workdir="/w", install_command="  ")
    text = manifests.base_stack_dockerfile(base_image="b", workdir="/my dir", install_command='echo "a"\necho b')
    assert 'COPY [".", "/my dir"]' in text
    assert text.endswith('RUN ["/bin/sh", "-c", "echo \\"a\\"\\necho b"]\n')


@pytest.mark.parametrize(("image", "workdir"), [("", "/code"), ("a b", "/code"), ("img", "code"), ("img", "/a\nRUN x")])
def test_base_stack_dockerfile_refuses_bad_input(image, workdir):
    with pytest.raises(ValueError):
        manifests.base_stack_dockerfile(base_image=image, workdir=workdir)


def test_dockerignore_parsing_and_label_lookup():
    assert manifests.parse_dockerignore("# c\n\n  *.pyc \n!keep.pyc\n") == ["*.pyc", "!keep.pyc"]
    assert manifests.labels_job_id({"acc.managed": "1", "acc.job": "7"}) == 7
    assert manifests.labels_job_id({"acc.job": "7"}) is None
    assert manifests.labels_job_id({"acc.managed": "1", "acc.job": "x"}) is None
    assert manifests.managed_filter(7) == {"label": ["acc.managed=1", "acc.job=7"]}


def test_state_is_plain_json():
    import json

    state = manifests.state_for(make_spec(), container_id="abc", network="none")
    assert json.loads(json.dumps(state)) == state
    assert state["name"] == "acc-job-42" and state["pipe"] == "acc-pipe-job-42"


@pytest.mark.docker
def test_engine_creates_exactly_the_isolated_container(docker_client, docker_backend, tmp_path):
    """What the engine actually applied: no host path, no privileges, our limits."""
    spec = make_spec(
        job_id=990_000_001,
        command="sleep 5",
        host_dir=tmp_path,
        root_dir=tmp_path / "root",
        pipe="acc-test-pipe-990000001",
    )
    try:
        state = docker_backend.start(spec)
        host = docker_client.containers.get(state["id"]).attrs["HostConfig"]
        assert not host.get("Binds")
        assert [(m["Type"], m["Source"], m["Target"]) for m in host["Mounts"]] == [
            ("volume", "acc-test-pipe-990000001", "/mnt/pipe")
        ]
        assert host["Privileged"] is False
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["PidsLimit"] == docker_backend.pids_limit
        assert host["Memory"] == host["MemorySwap"] == 256 * 1024**2
        assert host["NetworkMode"] == "none"
        volume = docker_client.volumes.get("acc-test-pipe-990000001")
        assert volume.attrs["Labels"]["acc.managed"] == "1"
    finally:
        docker_backend.stop_by_id(spec.job_id, grace=0)
        docker_backend.remove_pipe("acc-test-pipe-990000001")


@pytest.mark.parametrize(
    ("name", "strip", "expected"),
    [
        ("out", "out", None),  # the exported folder itself
        ("out/a.txt", "out", "a.txt"),
        ("out/sub/b.txt", "out", "sub/b.txt"),
        ("other/a.txt", "out", None),
        ("out/../../etc/passwd", "out", None),
        ("a.txt", None, "a.txt"),
        ("/etc/passwd", None, None),
        ("../x", None, None),
    ],
)
def test_export_member_paths_stay_below_the_destination(name, strip, expected):
    assert manifests.export_member_path(name, strip) == expected


@pytest.mark.parametrize("dockerfile", ["/etc/passwd", "../Dockerfile", "a/../../Dockerfile"])
def test_dockerfile_outside_the_context_is_refused(dockerfile):
    with pytest.raises(ValueError, match="inside the job folder"):
        manifests.dockerfile_path(dockerfile)


def test_dockerfile_path_defaults_and_keeps_subfolders():
    assert manifests.dockerfile_path("") == "Dockerfile"
    assert manifests.dockerfile_path("docker/Dockerfile.acc") == "docker/Dockerfile.acc"

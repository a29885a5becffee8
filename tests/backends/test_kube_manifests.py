"""The pod the kubernetes backend asks for, and how it reads a pod's state: plain asserts on the API's dicts."""

from backends import kube_manifests as km
from tests.backends.test_docker_manifests import make_spec


def _pod(**overrides):
    fields = dict(image="reg/acc/x@sha256:1", helper_image="reg/acc/busybox@sha256:2", instance="test", pipe_claim=None)
    fields.update(with_files=True, deadline=60)
    fields.update(overrides)
    return km.pod_manifest(make_spec(**fields.pop("spec", {})), **fields)


def _container(pod, name):
    return next(c for c in pod["spec"]["containers"] + pod["spec"]["initContainers"] if c["name"] == name)


def test_the_pod_gets_no_token_no_escalation_and_few_capabilities():
    pod = _pod()
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["enableServiceLinks"] is False
    for container in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert not {"NET_RAW", "SYS_ADMIN", "MKNOD"} & set(security["capabilities"].get("add", []))
    assert not any("hostPath" in v for v in pod["spec"]["volumes"])


def test_resources_come_from_the_routine_and_the_command_from_the_spec():
    pod = _pod(spec={"cores": 1.5, "ram": 64 * 1024**2, "storage_local": 3 * 1024**3})
    job = _container(pod, km.JOB_CONTAINER)
    assert job["resources"]["limits"] == {
        "cpu": "1500m",
        "memory": str(64 * 1024**2),
        "ephemeral-storage": str(3 * 1024**3),
    }
    assert job["resources"]["requests"] == job["resources"]["limits"]
    env = {e["name"]: e["value"] for e in job["env"]}
    assert env["ACC_COMMAND"] == "echo hi && ls" and env["A"] == "1" and env["ACC_WORKDIR"] == "/code"
    assert pod["spec"]["activeDeadlineSeconds"] == 60 and pod["spec"]["restartPolicy"] == "Never"


def test_labels_name_the_deployment_and_the_job_and_ours_win():
    pod = _pod(spec={"labels": {"acc.project": "Demo Proj", "acc.job": "999"}})
    labels = pod["metadata"]["labels"]
    assert labels["acc.job"] == "42" and labels["acc.instance"] == "test" and labels["acc.managed"] == "1"
    assert labels["acc.project"] == "demo-proj"
    assert pod["metadata"]["name"] == "acc-job-42"


def test_a_session_has_no_pod_deadline_and_a_pod_without_files_no_init_container():
    pod = _pod(deadline=None, with_files=False)
    assert "activeDeadlineSeconds" not in pod["spec"] and pod["spec"]["initContainers"] == []


def test_the_workflow_volume_is_mounted_at_mnt_pipe():
    pod = _pod(pipe_claim="acc-pipe-run-7")
    assert {"name": "acc-pipe", "persistentVolumeClaim": {"claimName": "acc-pipe-run-7"}} in pod["spec"]["volumes"]
    assert {"name": "acc-pipe", "mountPath": "/mnt/pipe"} in _container(pod, km.JOB_CONTAINER)["volumeMounts"]


def _status(job_state: dict, phase="Running", **more):
    return {"status": {"phase": phase, "containerStatuses": [{"name": "job", "state": job_state}], **more}}


def test_the_end_of_the_job_container_and_an_oom_kill_are_read_from_the_pod():
    assert km.job_exit(_status({"running": {}})) is None
    assert km.job_exit(_status({"terminated": {"exitCode": 3, "reason": "Error"}})) == (3, False, "Error")
    assert km.job_exit(_status({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}))[:2] == (137, True)
    ended = km.job_exit({"status": {"phase": "Failed", "reason": "DeadlineExceeded"}})
    assert ended == (-1, False, "DeadlineExceeded")


def test_an_image_that_cannot_be_pulled_is_a_problem_but_waiting_for_room_is_not():
    pulling = _status({"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}, phase="Pending")
    assert "ErrImagePull: manifest unknown" in km.waiting_problem(pulling)
    unschedulable = {
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1"}],
        }
    }
    assert km.waiting_problem(unschedulable) is None
    assert km.pending_reason(unschedulable) == "Unschedulable: 0/1"


def test_only_a_job_that_leaves_something_to_read_keeps_a_sidecar():
    lone = _pod(spec={"outputs": (), "pipe_shared": False})
    assert [c["name"] for c in lone["spec"]["containers"]] == [km.JOB_CONTAINER]
    for spec in ({"outputs": ("/code/out/",), "pipe_shared": False}, {"outputs": (), "pipe_shared": True}):
        pod = _pod(spec=spec)
        assert [c["name"] for c in pod["spec"]["containers"]] == [km.JOB_CONTAINER, km.OUT_CONTAINER]

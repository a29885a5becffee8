"""What a job sees inside its pod on the real test cluster: its own variables, none of the platform's, no
service-account token, no extra privileges."""

import os
import uuid

import pytest

from tests.conftest import wait_for_status
from tests.workers.test_jobs import log_text, make_routine, nothing_left, run

pytestmark = pytest.mark.kubernetes

PROBE = (
    "env | sort; "
    "ls /var/run/secrets/kubernetes.io/serviceaccount 2>&1 || true; "
    "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"
)


def test_a_pod_sees_its_own_variables_but_no_platform_secret_token_or_privilege(start_worker, api, project, alice):
    start_worker("kubernetes")
    job_id = run(api, alice, make_routine(project, alice, PROBE, conf={"WHO": "ada"}), secrets={"API_KEY": "k3y-Value"})
    job = wait_for_status(job_id, ["SUCCEEDED", "FAILED"], timeout=90)
    text = log_text(api, alice, job_id)
    assert job.status == "SUCCEEDED", text + job.message
    assert "WHO=ada" in text and "API_KEY=********" in text and f"ACC_JOB_ID={job_id}" in text
    for platform_variable in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "KUBECONFIG", "DOCKER_HOST", "ACC_K8S_"):
        assert platform_variable not in text, f"{platform_variable} reached the pod"
    assert "No such file or directory" in text, "no service-account token is mounted"
    assert "NoNewPrivs:\t1" in text
    effective = int(text.split("CapEff:\t")[1].split()[0], 16)
    assert not effective & (1 << 13), "no CAP_NET_RAW"
    assert not effective & (1 << 21), "no CAP_SYS_ADMIN"
    nothing_left("kubernetes", job)


def test_a_pod_no_node_has_room_for_fails_with_the_schedulers_reason_after_the_start_timeout(
    start_worker, api, project, alice
):
    # 200 cores at the tests' 5 % request are 10 cores: more than the test node has, so it is never scheduled
    start_worker("kubernetes", extra_env={"ACC_K8S_START_TIMEOUT": "8"})
    job_id = run(api, alice, make_routine(project, alice, "echo never", required_cores=200))
    job = wait_for_status(job_id, "RUNNING", timeout=30)  # the pod exists: the cluster has it, no worker waits
    job = wait_for_status(job_id, ["FAILED", "SUCCEEDED"], timeout=60)
    assert job.status == "FAILED" and job.error_code == "start", job.message
    assert "not started within 8 s" in job.message and "Insufficient cpu" in job.message, job.message
    assert "could not be read" not in log_text(api, alice, job_id)  # nothing to read: no wait for its log
    nothing_left("kubernetes", job)


def test_an_image_the_registry_lost_since_its_push_is_pushed_again(settings):
    """The engine remembers a push (RepoDigests); a registry emptied since (a new cluster, a garbage
    collection) must get the image again, or every pod fails to pull it."""
    import docker
    import requests

    from backends.kubernetes import KubernetesBackend
    from tests.kube_fixtures import require_cluster

    require_cluster()
    settings.ACC_K8S_REGISTRY = os.environ["ACC_K8S_REGISTRY"]
    name = f"acc-test/relost-{uuid.uuid4().hex[:8]}"
    engine = docker.from_env()
    engine.images.get("acc-test/busybox:latest").tag(name, tag="1")
    try:
        reference = KubernetesBackend().resolve_image(f"{name}:1")
        repo, _, digest = reference.partition("@")
        path = repo.split("/", 1)[1]
        manifest = f"http://{settings.ACC_K8S_REGISTRY}/v2/{path}/manifests/{digest}"
        accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
        assert requests.delete(manifest, timeout=10).status_code == 202
        assert requests.head(manifest, headers=accept, timeout=10).status_code == 404

        assert KubernetesBackend().resolve_image(f"{name}:1") == reference
        assert requests.head(manifest, headers=accept, timeout=10).status_code == 200
    finally:
        engine.images.remove(f"{name}:1", force=True)

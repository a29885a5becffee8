"""The real Kubernetes cluster that `make test` starts (scripts/cluster.sh up) for the kubernetes backend's tests.

A missing or unreachable cluster fails the test with the command that fixes it; it is never a skip. At the end of
the session no pod of this test deployment may be left in the namespace.
"""

from __future__ import annotations

import os

import pytest

FIX = (
    "`make test` starts it; by hand: `export KUBECONFIG=$(bash scripts/cluster.sh up | tail -1) "
    "ACC_K8S_REGISTRY=127.0.0.1:5000 ACC_K8S_HELPER_IMAGE=acc-test/busybox:latest`"
)
_checked: list[bool] = []
# the backends that run images, as a parametrize list for tests that hold for both
IMAGE_BACKENDS = ["docker", pytest.param("kubernetes", marks=pytest.mark.kubernetes)]


def core():
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(config_file=os.environ["KUBECONFIG"]))


def require_cluster() -> None:
    """Fail the test (not skip) unless the test cluster answers."""
    if _checked:
        return
    missing = [name for name in ("KUBECONFIG", "ACC_K8S_REGISTRY") if not os.environ.get(name)]
    if missing:
        pytest.fail(f"The kubernetes tests need {', '.join(missing)}: {FIX}", pytrace=False)
    try:
        core().list_namespaced_pod(namespace(), limit=1)
        problem = None
    except Exception as exc:
        problem = str(exc)[:500]
    if problem is not None:
        pytest.fail(f"The test cluster does not answer ({problem}): {FIX}", pytrace=False)
    _checked.append(True)


def namespace() -> str:
    return os.environ.get("ACC_K8S_NAMESPACE", "acc-jobs")


def pods_of(job_id: int) -> list[str]:
    pods = core().list_namespaced_pod(namespace(), label_selector=f"acc.job={job_id}")
    return [p.metadata.name for p in pods.items if p.metadata.deletion_timestamp is None]


def deployment_pods() -> list[str]:
    from backends import kube_manifests as km

    pods = core().list_namespaced_pod(namespace(), label_selector=km.selector(os.environ.get("ACC_INSTANCE", "test")))
    return [p.metadata.name for p in pods.items]


@pytest.fixture(scope="session", autouse=True)
def no_pod_left_behind():
    """After the whole session, no pod of this test deployment is left on the cluster."""
    yield
    if not _checked:
        return  # no kubernetes test ran in this session
    import time

    deadline = time.monotonic() + 60
    left = deployment_pods()
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = deployment_pods()
    assert not left, f"pods left behind on the cluster after the tests: {left}"

"""The manifests that run the platform itself on Kubernetes (deploy/kubernetes/).

The static tests read the YAML: hardened pods, an API token only where the backend calls the API, and RBAC
that grants exactly what backends/kubernetes.py and backends/kube_watch.py use. The dry run asks the real test
cluster (`make cluster`) to validate and admit every object without storing it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.kube_fixtures import require_cluster

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"
PLATFORM_NS, JOBS_NS, ACCOUNT = "accelerator", "acc-jobs", "accelerator"
IMAGE = "accelerator:latest"
PROCESSES = ("web", "proxy", "worker", "beat", "supervisor")
WITH_API = {"worker", "supervisor"}

ROLE_GRANTS = {
    *(("pods", verb) for verb in ("create", "get", "list", "watch", "delete")),
    ("pods/exec", "create"),
    ("pods/exec", "get"),
    ("pods/log", "get"),
    *(("persistentvolumeclaims", verb) for verb in ("create", "get", "delete")),
}
CLUSTER_GRANTS = {
    *(("persistentvolumes", verb) for verb in ("create", "get", "delete")),
    ("nodes/proxy", "get"),
    ("nodes", "list"),
    ("nodes", "get"),
}
# read by libraries or the shell, not by accelerator/settings.py
OUTSIDE_SETTINGS = {"DOCKER_HOST", "HOME"}


def documents() -> list[dict]:
    docs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def find(kind: str, name: str, namespace: str | None = PLATFORM_NS) -> dict:
    found = [
        d
        for d in documents()
        if d["kind"] == kind and d["metadata"]["name"] == name and d["metadata"].get("namespace") == namespace
    ]
    assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
    return found[0]


def deployments() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == "Deployment"}


def containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def grants(rules: list[dict]) -> set[tuple[str, str]]:
    """(resource, verb) pairs; a wildcard stays "*" and so never equals an expected set."""
    pairs = set()
    for rule in rules:
        assert rule.get("apiGroups") == [""], f"only the core API group is needed: {rule}"
        assert "nonResourceURLs" not in rule, rule
        pairs |= {(resource, verb) for resource in rule["resources"] for verb in rule["verbs"]}
    return pairs


def kubectl_ref(doc: dict) -> str:
    """How `kubectl apply` names an object: deployment.apps/web, service/web, role.rbac.authorization.k8s.io/x."""
    group = doc["apiVersion"].rpartition("/")[0]
    return f"{doc['kind'].lower()}{'.' + group if group else ''}/{doc['metadata']['name']}"


def test_the_manifests_declare_every_platform_object():
    names = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in documents()}
    expected = {
        ("Namespace", None, PLATFORM_NS),
        ("Namespace", None, JOBS_NS),
        ("ServiceAccount", PLATFORM_NS, ACCOUNT),
        ("ConfigMap", PLATFORM_NS, "accelerator-env"),
        ("Secret", PLATFORM_NS, "accelerator-secrets"),
        ("Deployment", PLATFORM_NS, "redis"),
        ("Service", PLATFORM_NS, "redis"),
        ("Service", PLATFORM_NS, "web"),
        ("Service", PLATFORM_NS, "proxy"),
        *(("Deployment", PLATFORM_NS, name) for name in PROCESSES),
    }
    assert expected <= names, f"missing: {expected - names}"


def test_the_role_grants_exactly_what_the_backend_calls_in_the_jobs_namespace():
    roles = [d for d in documents() if d["kind"] in ("Role", "ClusterRole")]
    assert len(roles) == 2, "one Role and one ClusterRole, nothing broader"
    role = next(d for d in roles if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == JOBS_NS
    assert grants(role["rules"]) == ROLE_GRANTS
    cluster_role = next(d for d in roles if d["kind"] == "ClusterRole")
    assert grants(cluster_role["rules"]) == CLUSTER_GRANTS


def test_the_bindings_give_the_roles_to_the_platform_service_account_only():
    subject = [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": PLATFORM_NS}]
    bindings = [d for d in documents() if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert {d["kind"] for d in bindings} == {"RoleBinding", "ClusterRoleBinding"} and len(bindings) == 2
    for binding in bindings:
        role_kind = binding["kind"].removesuffix("Binding")
        role = next(d for d in documents() if d["kind"] == role_kind)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"] == subject
        assert binding["metadata"].get("namespace") == role["metadata"].get("namespace")


@pytest.mark.parametrize("name", [*PROCESSES, "redis"])
def test_every_pod_runs_unprivileged_with_limits(name):
    pod = deployments()[name]["spec"]["template"]["spec"]
    assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
    assert not [v for v in pod.get("volumes", []) if "hostPath" in v], "no host folders in the platform's pods"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod.get("enableServiceLinks") is False, "no Service addresses in the environment (REDIS_PORT...)"
    for container in containers(pod):
        context = container["securityContext"]
        assert context.get("privileged", False) is False
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}, "drop every capability, add none"
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) >= {"cpu", "memory"}, f"{container['name']}: {bound}"


@pytest.mark.parametrize("name", PROCESSES)
def test_the_platform_runs_its_image_as_uid_1000(name):
    pod = deployments()[name]["spec"]["template"]["spec"]
    # The Dockerfile has no USER: without an explicit uid, runAsNonRoot alone would refuse to start the image.
    assert pod["securityContext"]["runAsUser"] == 1000
    for container in containers(pod):
        assert container["image"] == IMAGE
        assert {"configMapRef": {"name": "accelerator-env"}} in container["envFrom"]
        assert {"secretRef": {"name": "accelerator-secrets"}} in container["envFrom"]


@pytest.mark.parametrize("name", [*PROCESSES, "redis"])
def test_only_the_worker_and_the_supervisor_get_an_api_token(name):
    pod = deployments()[name]["spec"]["template"]["spec"]
    if name in WITH_API:
        assert pod["serviceAccountName"] == ACCOUNT
        assert pod.get("automountServiceAccountToken", True) is True
    else:
        assert pod.get("serviceAccountName", "default") == "default"
        assert pod["automountServiceAccountToken"] is False


def test_each_deployment_runs_its_process():
    found = deployments()

    def command(name: str) -> str:
        return " ".join(found[name]["spec"]["template"]["spec"]["containers"][0]["command"])

    assert command("web").startswith("python manage.py serve_web --host 0.0.0.0 --port 8000")
    assert command("proxy").startswith("python manage.py serve_proxy --host 0.0.0.0 --port 8001")
    assert re.fullmatch(r"celery -A accelerator worker -Q jobs,default -P threads -c \d+.*", command("worker"))
    assert command("beat").startswith("celery -A accelerator beat")
    assert command("supervisor") == "python manage.py supervise --backend kubernetes"
    for single in ("beat", "supervisor"):
        assert found[single]["spec"]["replicas"] == 1
        assert found[single]["spec"]["strategy"] == {"type": "Recreate"}, "never two at once during a rollout"


def test_the_config_sends_jobs_to_the_jobs_namespace_through_the_in_cluster_account():
    env = find("ConfigMap", "accelerator-env")["data"]
    assert env["ACC_BACKEND"] == "kubernetes"
    assert env["ACC_K8S_NAMESPACE"] == JOBS_NS
    assert env["ACC_K8S_KUBECONFIG"] == ""
    assert env["ACC_K8S_REGISTRY"] and env["ACC_INSTANCE"] and env["DOCKER_HOST"]
    assert env["REDIS_URL"].startswith("redis://redis:6379/"), "the redis Service of the manifest"
    secret = find("Secret", "accelerator-secrets")["stringData"]
    assert "CHANGE-ME" in secret["SECRET_KEY"], "an obvious placeholder, never a usable key"
    assert not {"SECRET_KEY", "DATABASE_URL", "ACC_SECRETS_KEY"} & set(env), "secrets stay out of the ConfigMap"
    settings_text = (ROOT / "accelerator" / "settings.py").read_text()
    unread = [key for key in [*env, *secret] if key not in OUTSIDE_SETTINGS and f'"{key}"' not in settings_text]
    assert not unread, f"variables no setting reads (typos?): {unread}"


def test_the_web_readiness_probe_asks_a_page_django_serves():
    from django.urls import resolve

    probe = deployments()["web"]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]
    resolve(probe["path"])  # raises Resolver404 for a path no view serves
    host = {h["name"]: h["value"] for h in probe["httpHeaders"]}["Host"]
    allowed = find("ConfigMap", "accelerator-env")["data"]["ALLOWED_HOSTS"].split(",")
    assert host in allowed, "the kubelet's Host would otherwise be the pod IP, which Django answers with 400"


@pytest.mark.parametrize("name", ["web", "proxy", "redis"])
def test_each_service_reaches_its_pods(name):
    service = find("Service", name)["spec"]
    template = deployments()[name]["spec"]["template"]
    assert service["selector"].items() <= template["metadata"]["labels"].items()
    ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    assert {p["targetPort"] for p in service["ports"]} <= ports


def kubectl(*args: str) -> subprocess.CompletedProcess:
    assert shutil.which("kubectl"), "kubectl is needed to talk to the test cluster"
    command = ["kubectl", "--kubeconfig", os.environ["KUBECONFIG"], "--request-timeout=60s", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def ensure_platform_namespace() -> None:
    """A server-side dry run admits namespaced objects only into a namespace that exists (it stores nothing, so
    the manifest's own Namespace is not there yet): create the empty namespace once and leave it."""
    if kubectl("get", "namespace", PLATFORM_NS).returncode == 0:
        return
    created = kubectl("create", "namespace", PLATFORM_NS)
    assert created.returncode == 0 or "AlreadyExists" in created.stderr, created.stderr


@pytest.mark.kubernetes
def test_the_api_server_accepts_every_manifest_in_a_dry_run():
    require_cluster()
    ensure_platform_namespace()
    applied = kubectl("apply", "--dry-run=server", "-f", str(MANIFESTS))
    assert applied.returncode == 0, f"kubectl apply --dry-run=server failed:\n{applied.stderr}\n{applied.stdout}"
    lines = applied.stdout.splitlines()
    outcome = r" (created|configured|unchanged) \(server dry run\)"
    refs = [kubectl_ref(doc) for doc in documents()]
    missing = [ref for ref in refs if not any(re.fullmatch(re.escape(ref) + outcome, line) for line in lines)]
    assert not missing, f"not reported by the API server: {missing}\n{applied.stdout}"

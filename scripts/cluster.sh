#!/usr/bin/env bash
# A real single-node Kubernetes 1.20.2 cluster for the tests and laptops (`make cluster`, `make cluster-down`).
#
#   bash scripts/cluster.sh up          build the binaries if they are not cached, start what is not running,
#                                       print the admin kubeconfig's path as the last (only) line on stdout
#   bash scripts/cluster.sh down        stop everything and undo the changes to the host (keeps the binaries)
#   bash scripts/cluster.sh check       smoke check: a pod from the registry by digest, its log, a PV binding
#   bash scripts/cluster.sh kubeconfig  print the kubeconfig's path; non-zero when the cluster is not up
#
#   export KUBECONFIG=$(bash scripts/cluster.sh up)
#
# Runs as root on Debian 12 (cgroup v1 is fine). Pods run on a private containerd with their own bridge
# (10.88.0.0/24, reachable from the host); images come from a registry on 127.0.0.1:5000 that the shared
# Docker engine pushes to. Progress goes to stderr, daemon logs to /var/log/accelerator-cluster/. Anything
# that fails says what and where its log is, and exits non-zero.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster"
for part in common build pki host daemons down check; do
    # shellcheck source=/dev/null
    . "$HERE/$part.sh"
done

cluster_up() {
    local started=$SECONDS
    apt_install etcd-server containernetworking-plugins containerd docker-registry curl iproute2 openssl
    command -v kubectl >/dev/null || apt_install kubernetes-client
    ensure_binaries
    record_host
    mkdir -p "$STATE" "$RUN" "$LOGS"
    chmod 0700 "$STATE"
    ensure_pki
    ensure_pod_network
    ensure_registry
    ensure_containerd
    ensure_etcd
    ensure_apiserver
    ensure_controller_manager
    ensure_scheduler
    ensure_kubelet
    wait_cluster_ready
    say "ready in $((SECONDS - started))s: node $NODE_NAME, namespace $NAMESPACE, registry $REGISTRY_ADDR"
    say "kubeconfig (also: bash scripts/cluster.sh kubeconfig):"
    echo "$KUBECONFIG_PATH"
}

cluster_kubeconfig() {
    [ -s "$KUBECONFIG_PATH" ] && running kube-apiserver && node_ready \
        || { echo "cluster: not up (make cluster)" >&2; exit 1; }
    echo "$KUBECONFIG_PATH"
}

[ "$(id -u)" = 0 ] || die "must run as root (it starts containerd, a kubelet and changes sysctls)"
command=${1:-}
case "$command" in
    up|down|check)
        # One at a time: a second `make cluster` waits for the first (the build may take ~17 minutes).
        mkdir -p "$(dirname "$CACHE")"
        exec 9>>"$(dirname "$CACHE")/.lock"
        flock -w 3600 9 || die "another scripts/cluster.sh held the lock for an hour"
        "cluster_$command"
        ;;
    kubeconfig) cluster_kubeconfig ;;
    *)
        echo "usage: bash scripts/cluster.sh up|down|check|kubeconfig" >&2
        exit 2
        ;;
esac

# `scripts/cluster.sh down` (sourced): stop every daemon and pod of the test cluster and undo its changes to
# the host. Safe to run twice, and on a cluster that is half up. The binary cache stays.

# Let the kubelet take the pods down itself first: that stops sandboxes through CNI (addresses released,
# veths gone) and unmounts their volumes. What is left after that is removed by force below.
drain_pods() {
    running kube-apiserver && running kubelet && apiserver_up || return 0
    kubectl_admin delete pods --all --all-namespaces --grace-period=0 --force --wait=false \
        >>"$LOGS/kubectl.log" 2>&1 || true
    wait_for 30 pods_gone || say "pods still running 30s after their deletion; removing them through containerd"
}

pods_gone() {
    [ -z "$(ctr_k8s tasks ls -q 2>/dev/null)" ] && ! findmnt -rn -o TARGET | grep -q "^$STATE/kubelet/"
}

remove_containers() {
    running containerd && containerd_up || return 0
    local id
    for id in $(ctr_k8s containers ls -q); do
        ctr_k8s tasks delete --force "$id" >/dev/null 2>&1 || true
        ctr_k8s containers delete "$id" >/dev/null 2>&1 || say "WARNING: could not delete container $id"
    done
}

# Shims outlive a containerd that was killed with tasks left; ours name our socket on their command line.
kill_leftover_shims() {
    local pid
    for pid in $(pgrep -f -- "containerd-shim.* -address $CONTAINERD_SOCK " || true); do
        say "killing leftover containerd shim $pid"
        kill -KILL "$pid" 2>/dev/null || true
    done
}

cluster_down() {
    load_host_record
    if [ -z "$HOST_BEFORE" ] && [ ! -d "$STATE" ] && [ ! -d "$RUN" ]; then
        say "not up; nothing to stop"
        return
    fi
    # Controllers first, or a Job's or ReplicaSet's pods would come back while they are drained.
    stop_daemon kube-controller-manager 10
    stop_daemon kube-scheduler 10
    drain_pods
    stop_daemon kubelet 15
    remove_containers
    local name
    for name in kube-apiserver etcd containerd registry; do
        stop_daemon "$name" 10
    done
    kill_leftover_shims
    ip link del "$POD_BRIDGE" 2>/dev/null || true
    unmount_under "$RUN"
    unmount_under "$STATE"
    rm -rf --one-file-system "$STATE" "$REGISTRY_DATA" "$RUN" "$LOGS" \
        || say "WARNING: some of $STATE $REGISTRY_DATA $RUN $LOGS could not be removed"
    restore_host
    say "stopped; binaries kept in $CACHE"
}

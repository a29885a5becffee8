# `scripts/cluster.sh check` (sourced): proves the cluster does what the Kubernetes backend needs, end to end.
# An image pushed from the shared Docker engine to the loopback registry runs as a pod pulled by digest, its
# log is read through the apiserver, and a hostPath PersistentVolume binds a claim.

SHARED_DOCKER=unix:///run/acc-docker.sock
CHECK_IMAGE=acc-test/busybox:latest

check_fail() {
    printf 'check      FAILED: %s\n' "$1" >&2
    [ -n "${2:-}" ] && printf 'check      see: %s\n' "$2" >&2
    cleanup_check
    exit 1
}

cleanup_check() {
    kubectl_admin -n "$NAMESPACE" delete pod "$CHECK_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    kubectl_admin -n "$NAMESPACE" delete pvc "$CHECK_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    kubectl_admin delete pv "$CHECK_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}

# Prints the image's reference by digest in the loopback registry.
push_check_image() {
    local target="$REGISTRY_ADDR/$CHECK_IMAGE" docker=(docker -H "$SHARED_DOCKER")
    "${docker[@]}" image inspect "$CHECK_IMAGE" >/dev/null 2>&1 \
        || check_fail "$CHECK_IMAGE is not on the shared engine $SHARED_DOCKER (bash scripts/services.sh builds it)"
    "${docker[@]}" tag "$CHECK_IMAGE" "$target" || check_fail "docker tag $CHECK_IMAGE $target"
    "${docker[@]}" push "$target" >>"$LOGS/check.log" 2>&1 \
        || check_fail "docker push $target to the cluster's registry" "$LOGS/check.log"
    "${docker[@]}" image inspect "$target" --format '{{range .RepoDigests}}{{println .}}{{end}}' \
        | grep -m1 "^${target%:*}@sha256:" || check_fail "no digest for $target after the push"
}

pod_phase() { kubectl_admin -n "$NAMESPACE" get pod "$CHECK_NAME" -o jsonpath='{.status.phase}' 2>/dev/null; }

check_pod() {
    local image=$1 phase deadline=$((SECONDS + 60))
    # Always: the kubelet asks the registry for the digest each time, so the check proves the pull path.
    kubectl_admin create -f - >>"$LOGS/check.log" 2>&1 <<EOF || check_fail "creating pod $CHECK_NAME" "$LOGS/check.log"
apiVersion: v1
kind: Pod
metadata: {name: $CHECK_NAME, namespace: $NAMESPACE, labels: {app: acc-cluster-check}}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    imagePullPolicy: Always
    command: [echo, hello]
EOF
    while phase=$(pod_phase); [ "$phase" != Succeeded ]; do
        [ "$phase" = Failed ] && check_fail "pod $CHECK_NAME failed: $(kubectl_admin -n "$NAMESPACE" describe pod "$CHECK_NAME" | tail -n 8)"
        [ "$SECONDS" -lt "$deadline" ] \
            || check_fail "pod $CHECK_NAME not Succeeded after 60s (phase '$phase'): $(kubectl_admin -n "$NAMESPACE" describe pod "$CHECK_NAME" | tail -n 8)" "$LOGS/kubelet.log"
        sleep 0.2
    done
    local log
    log=$(kubectl_admin -n "$NAMESPACE" logs "$CHECK_NAME" 2>&1) || check_fail "reading the pod's log through the apiserver: $log" "$LOGS/kube-apiserver.log"
    [ "$log" = hello ] || check_fail "the pod's log is '$log', expected 'hello'"
    kubectl_admin -n "$NAMESPACE" delete pod "$CHECK_NAME" --wait=true --timeout=30s >>"$LOGS/check.log" 2>&1 \
        || check_fail "deleting pod $CHECK_NAME" "$LOGS/check.log"
}

# The PV goes in first and the claim only once the binder has seen it (Available): a claim naming a volume
# the binder has not cached yet waits for its periodic resync (15 s, sometimes two).
check_volume() {
    local t0=$SECONDS
    kubectl_admin create -f - >>"$LOGS/check.log" 2>&1 <<EOF || check_fail "creating PV $CHECK_NAME" "$LOGS/check.log"
apiVersion: v1
kind: PersistentVolume
metadata: {name: $CHECK_NAME}
spec:
  capacity: {storage: 1Mi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: $STATE/check-volume, type: DirectoryOrCreate}
EOF
    wait_for 30 volume_available || check_fail "PV $CHECK_NAME not Available after 30s" "$LOGS/kube-controller-manager.log"
    kubectl_admin create -f - >>"$LOGS/check.log" 2>&1 <<EOF || check_fail "creating PVC $CHECK_NAME" "$LOGS/check.log"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $CHECK_NAME, namespace: $NAMESPACE}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  volumeName: $CHECK_NAME
  resources: {requests: {storage: 1Mi}}
EOF
    wait_for 60 claim_bound || check_fail "claim $CHECK_NAME not Bound after 60s" "$LOGS/kube-controller-manager.log"
    cleanup_check
    printf 'check      hostPath PV + PVC (storageClassName manual) bound in %ss\n' "$((SECONDS - t0))" >&2
}

volume_available() {
    [ "$(kubectl_admin get pv "$CHECK_NAME" -o jsonpath='{.status.phase}')" = Available ]
}

claim_bound() {
    [ "$(kubectl_admin -n "$NAMESPACE" get pvc "$CHECK_NAME" -o jsonpath='{.status.phase}')" = Bound ]
}

cluster_check() {
    local started image
    started=$(date +%s.%N)
    CHECK_NAME="acc-cluster-check-$$"
    apiserver_up || check_fail "the cluster is not up (make cluster)"
    [ "$(kubectl_admin auth can-i create pods -n "$NAMESPACE")" = yes ] \
        || check_fail "the admin kubeconfig may not create pods in $NAMESPACE"
    image=$(push_check_image)
    printf 'check      pushed %s\n' "$image" >&2
    check_pod "$image"
    printf 'check      pod ran from the registry by digest, said hello through the apiserver, deleted\n' >&2
    check_volume
    awk -v t0="$started" -v t1="$(date +%s.%N)" 'BEGIN { printf "check      OK in %.1fs\n", t1 - t0 }' >&2
}

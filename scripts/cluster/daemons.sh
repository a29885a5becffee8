# Configuration and start of each daemon of the test cluster (sourced by cluster.sh). Each ensure_* leaves a
# running daemon alone, so `up` on a running cluster only checks; a dead one is started again with the
# state it left (certificates, etcd data, images).

# A pod network the host reaches: a bridge with the gateway address, host-local addresses, no NAT or
# iptables rules (the host and its other engines are left as they are).
ensure_pod_network() {
    if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
        ip link add "$POD_BRIDGE" type bridge || die "cannot create the pod bridge $POD_BRIDGE"
    fi
    ip -4 addr show dev "$POD_BRIDGE" | grep -q "inet $POD_GATEWAY/" \
        || ip addr add "$POD_GATEWAY/${POD_SUBNET#*/}" dev "$POD_BRIDGE" \
        || die "cannot give $POD_BRIDGE the address $POD_GATEWAY"
    ip link set "$POD_BRIDGE" up || die "cannot bring $POD_BRIDGE up"
    mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam"
    cat >"$STATE/cni/net.d/10-acc-pods.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "acc-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY"}]],
        "dataDir": "$STATE/cni/ipam"
      }
    }
  ]
}
EOF
}

registry_up() { curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null; }

ensure_registry() {
    if running registry && registry_up; then
        say "registry: running on $REGISTRY_ADDR"
        return
    fi
    stop_daemon registry 5
    ss -ltnH "sport = :${REGISTRY_ADDR##*:}" | grep -q . \
        && die "port ${REGISTRY_ADDR##*:} is taken by another program (ss -ltnp 'sport = :${REGISTRY_ADDR##*:}')"
    mkdir -p "$REGISTRY_DATA"
    cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $REGISTRY_DATA
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    start_daemon registry serve "$STATE/registry.yml"
    wait_for 15 registry_up || die "the registry did not answer on http://$REGISTRY_ADDR/v2/" "$LOGS/registry.log"
    say "registry: started on $REGISTRY_ADDR (storage $REGISTRY_DATA)"
}

write_containerd_config() {
    local hosts="$STATE/containerd-hosts" name
    # Pulls from the loopback registry go over plain HTTP; every other registry stays HTTPS-only.
    for name in "$REGISTRY_ADDR" "localhost:${REGISTRY_ADDR##*:}"; do
        mkdir -p "$hosts/$name"
        printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' \
            "$REGISTRY_ADDR" "$REGISTRY_ADDR" >"$hosts/$name/hosts.toml"
    done
    # restrict_oom_score_adj: the kubelet asks for a negative oom_score_adj that root here may not set.
    # netns_mounts_under_state_dir: pod network namespaces under $RUN, not in the host's /run/netns.
    cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd"
state = "$RUN/containerd"
oom_score = 0

[grpc]
  address = "$CONTAINERD_SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$RUN/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$hosts"
EOF
}

containerd_up() { ctr_k8s version >/dev/null; }

ensure_containerd() {
    if running containerd && containerd_up; then
        say "containerd: running on $CONTAINERD_SOCK"
    else
        stop_daemon containerd 5
        write_containerd_config
        start_daemon containerd --config "$STATE/containerd.toml"
        wait_for 20 containerd_up || die "containerd did not answer on $CONTAINERD_SOCK" "$LOGS/containerd.log"
        say "containerd: started on $CONTAINERD_SOCK"
    fi
    if ! ctr_k8s images check "name==$PAUSE_IMAGE" 2>/dev/null | grep -q complete; then
        ctr_k8s images import "$CACHE/pause-image.tar" >>"$LOGS/containerd.log" 2>&1 \
            || die "could not import the pause image into containerd" "$LOGS/containerd.log"
        say "containerd: imported $PAUSE_IMAGE"
    fi
}

etcd_up() { curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }

ensure_etcd() {
    if running etcd && etcd_up; then
        say "etcd: running on 127.0.0.1:$ETCD_CLIENT_PORT"
        return
    fi
    stop_daemon etcd 5
    local client="http://127.0.0.1:$ETCD_CLIENT_PORT" peer="http://127.0.0.1:$ETCD_PEER_PORT"
    mkdir -p "$STATE/etcd" && chmod 0700 "$STATE/etcd"
    start_daemon etcd --name acc-test --data-dir "$STATE/etcd" \
        --listen-client-urls "$client" --advertise-client-urls "$client" \
        --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "acc-test=$peer" --initial-cluster-state new
    wait_for 30 etcd_up || die "etcd did not become healthy on $client" "$LOGS/etcd.log"
    say "etcd: started on $client"
}

apiserver_up() { [ "$(kubectl_admin get --raw /readyz 2>/dev/null)" = ok ]; }

ensure_apiserver() {
    if running kube-apiserver && apiserver_up; then
        say "apiserver: running on https://127.0.0.1:$APISERVER_PORT"
        return
    fi
    stop_daemon kube-apiserver 10
    # No kube-proxy and a loopback address: the `kubernetes` Service's endpoints are not maintained.
    start_daemon kube-apiserver \
        --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --insecure-port=0 \
        --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
        --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" --authorization-mode=Node,RBAC \
        --enable-admission-plugins=NodeRestriction \
        --service-cluster-ip-range="$SERVICE_SUBNET" \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=Hostname,InternalIP \
        --allow-privileged=true --feature-gates=TTLAfterFinished=true --v=1
    wait_for 60 apiserver_up || die "kube-apiserver did not become ready on 127.0.0.1:$APISERVER_PORT" \
        "$LOGS/kube-apiserver.log"
    say "apiserver: started on https://127.0.0.1:$APISERVER_PORT"
}

# Both run without serving ports of their own (nothing scrapes them) and without leader election. The
# volume binder resyncs every 2 s (not 15 s): a claim it missed at creation binds without a long wait.
ensure_controller_manager() {
    if running kube-controller-manager; then
        say "controller-manager: running"
        return
    fi
    mkdir -p "$STATE/kubelet-plugins"
    start_daemon kube-controller-manager \
        --kubeconfig="$STATE/controller-manager.kubeconfig" --leader-elect=false \
        --port=0 --secure-port=0 --use-service-account-credentials=true \
        --controllers='*,-nodeipam,-service,-route,-cloud-node-lifecycle' \
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
        --flex-volume-plugin-dir="$STATE/kubelet-plugins" --pvclaimbinder-sync-period=2s \
        --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
        --feature-gates=TTLAfterFinished=true --v=1
    say "controller-manager: started"
}

ensure_scheduler() {
    if running kube-scheduler; then
        say "scheduler: running"
        return
    fi
    start_daemon kube-scheduler \
        --kubeconfig="$STATE/scheduler.kubeconfig" --leader-elect=false --port=0 --secure-port=0 --v=1
    say "scheduler: started"
}

node_ready() {
    [ "$(kubectl_admin get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# Flags from what worked here: cgroupfs without QoS cgroups, no eviction, no iptables chains, swap allowed,
# and every directory it can be told about under $STATE. Node status every 4 s (not 10): the first Ready
# comes one update after registration. Its own API calls at up to 50/s (burst 100) instead of 5 (burst 10):
# a node starting 100 pods reports each pod's status several times, and at 5/s those reports queue.
ensure_kubelet() {
    if running kubelet; then
        say "kubelet: running"
        return
    fi
    mkdir -p "$STATE/kubelet" "$STATE/kubelet-plugins"
    start_daemon kubelet \
        --kubeconfig="$STATE/kubelet.kubeconfig" --hostname-override="$NODE_NAME" \
        --container-runtime=remote --container-runtime-endpoint="unix://$CONTAINERD_SOCK" \
        --image-service-endpoint="unix://$CONTAINERD_SOCK" --containerd="$CONTAINERD_SOCK" \
        --pod-infra-container-image="$PAUSE_IMAGE" \
        --root-dir="$STATE/kubelet" --volume-plugin-dir="$STATE/kubelet-plugins" \
        --cgroup-driver=cgroupfs --cgroups-per-qos=false --enforce-node-allocatable= \
        --make-iptables-util-chains=false --fail-swap-on=false --eviction-hard= \
        --address=127.0.0.1 --port="$KUBELET_PORT" --read-only-port=0 \
        --tls-cert-file="$PKI/kubelet-server.crt" --tls-private-key-file="$PKI/kubelet-server.key" \
        --client-ca-file="$PKI/ca.crt" --anonymous-auth=false --authorization-mode=Webhook \
        --authentication-token-webhook=true --max-pods=250 --serialize-image-pulls=false \
        --node-status-update-frequency=4s --kube-api-qps=50 --kube-api-burst=100 --v=1
    say "kubelet: started"
}

# Ready means what a user of the cluster needs: the node takes pods and acc-jobs admits them.
wait_cluster_ready() {
    wait_for 90 node_ready || die "node $NODE_NAME did not become Ready in 90s" "$LOGS/kubelet.log"
    if ! kubectl_admin get namespace "$NAMESPACE" >/dev/null 2>&1; then
        kubectl_admin create namespace "$NAMESPACE" >/dev/null 2>>"$LOGS/kubectl.log" \
            || die "could not create the namespace $NAMESPACE" "$LOGS/kubectl.log"
    fi
    wait_for 60 default_account_ready \
        || die "no default service account with a token in $NAMESPACE after 60s" "$LOGS/kube-controller-manager.log"
    local name
    for name in "${DAEMONS[@]}"; do
        running "$name" || die "$name exited" "$LOGS/$name.log"
    done
}

# Pods are refused until their namespace's default service account (and, in 1.20, its token) exist.
default_account_ready() {
    [ -n "$(kubectl_admin -n "$NAMESPACE" get serviceaccount default -o jsonpath='{.secrets[*].name}' 2>/dev/null)" ]
}

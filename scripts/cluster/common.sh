# Shared by the scripts/cluster/*.sh parts of `scripts/cluster.sh`: where things live and small helpers.
# Sourced, never run. Everything the cluster writes on the host is under one of these paths (plus what the
# kubelet and CNI create on their own, recorded in host.sh).

K8S_VERSION=v1.20.2
PAUSE_IMAGE=k8s.gcr.io/pause:3.4.1   # built from build/pause/linux/pause.c of the same source (its TAG is 3.4.1)

CACHE=/var/cache/accelerator/kubernetes/$K8S_VERSION   # binaries; kept by `down`
STATE=/var/lib/accelerator/cluster                     # certificates, kubeconfigs, etcd, containerd, kubelet
REGISTRY_DATA=/var/lib/accelerator/registry
RUN=/run/accelerator-cluster                           # sockets, pids, containerd state
LOGS=/var/log/accelerator-cluster
BUILD_DIR=/var/tmp/accelerator-kubernetes-build        # ~3 GB while compiling, removed afterwards

KUBECONFIG_PATH=$STATE/admin.kubeconfig
HOST_RECORD=$STATE/host-before.env
CONTAINERD_SOCK=$RUN/containerd.sock

# Loopback ports chosen away from a system etcd (2379) or containerd; the registry's is fixed by the brief.
APISERVER_PORT=6443
ETCD_CLIENT_PORT=2479
ETCD_PEER_PORT=2480
KUBELET_PORT=10250
REGISTRY_ADDR=127.0.0.1:5000

# Pods get addresses on a bridge of their own that the host reaches (the session proxy connects to pod IPs).
POD_BRIDGE=acck8s0
POD_SUBNET=10.88.0.0/24
POD_GATEWAY=10.88.0.1
SERVICE_SUBNET=10.89.0.0/24   # virtual only: no kube-proxy
SERVICE_FIRST_IP=10.89.0.1

NODE_NAME=localhost           # a loopback --node-ip is refused; the Hostname address keeps `kubectl logs` working
NAMESPACE=acc-jobs

# Daemons in start order; `down` stops them in reverse.
DAEMONS=(registry containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet)

say() { printf 'cluster    %s\n' "$*" >&2; }

# die <message> [log]: print what failed and where to look, then exit non-zero.
die() {
    printf 'cluster    FAILED: %s\n' "$1" >&2
    if [ -n "${2:-}" ]; then
        printf 'cluster    log: %s (last lines below)\n' "$2" >&2
        tail -n 15 "$2" 2>/dev/null | sed 's/^/    | /' >&2 || true
    fi
    exit 1
}

# wait_for <seconds> <command...>: true once the command succeeds, false when the time is up.
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

kubectl_admin() { kubectl --kubeconfig "$KUBECONFIG_PATH" --request-timeout=10s "$@"; }
ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

APT_UPDATED=0
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    if [ "$APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# Path of the program a daemon runs; `running` compares it with /proc so a reused pid is not taken for ours.
daemon_exe() {
    case "$1" in
        registry) echo /usr/bin/docker-registry ;;
        containerd) echo /usr/bin/containerd ;;
        etcd) echo /usr/bin/etcd ;;
        *) echo "$CACHE/bin/$1" ;;
    esac
}

daemon_pid() { cat "$RUN/$1.pid" 2>/dev/null || true; }

running() {
    local pid
    pid=$(daemon_pid "$1")
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(daemon_exe "$1")" ]
}

# start_daemon <name> <args...>: run the daemon detached (own session, no terminal) so it outlives `make`.
start_daemon() {
    local name=$1; shift
    mkdir -p "$RUN" "$LOGS"
    printf '\n==== %s start %s\n' "$(date -u +%FT%TZ)" "$name" >>"$LOGS/$name.log"
    # 9>&-: the daemon must not inherit cluster.sh's lock, or the next `up` would wait for it to exit.
    setsid "$(daemon_exe "$name")" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$RUN/$name.pid"
}

# stop_daemon <name> [grace seconds]: TERM, then KILL after the grace; only the recorded pid, never by name.
stop_daemon() {
    local name=$1 grace=${2:-10} pid
    pid=$(daemon_pid "$name")
    if running "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_for "$grace" eval "! running $name"; then
            say "$name did not stop in ${grace}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait_for 5 eval "! running $name" || say "WARNING: $name (pid $pid) is still running"
        fi
    fi
    rm -f "$RUN/$name.pid"
}

# What the cluster changes on the host outside its own directories, recorded before the first start and
# put back by `down` (sourced by cluster.sh).
#
# The kubelet sets kernel tunables at start (it expects to own the machine) and creates fixed paths
# whatever its --root-dir; the CNI bridge plugin turns on IP forwarding; containerd's CRI pins network
# namespaces under /run/netns (not with our config), runc makes a k8s.io cgroup in every hierarchy, and
# mount(8) run by the kubelet starts util-linux's /run/mount.

HOST_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward)
HOST_PATHS=(/var/lib/kubelet /var/log/pods /var/log/containers /usr/libexec/kubernetes /etc/kubernetes
    /var/lib/cni /etc/cni /opt/cni /run/netns /run/mount /var/lib/accelerator)

# Written once: a second `up` (or one after a crash) must not take the cluster's own values for the host's.
record_host() {
    [ -s "$HOST_RECORD" ] && return
    mkdir -p "$STATE"
    local name path cg tmp="$HOST_RECORD.tmp"
    : >"$tmp"
    for name in "${HOST_SYSCTLS[@]}"; do
        echo "sysctl $name $(sysctl -n "$name")" >>"$tmp"
    done
    # $STATE was just made: /var/lib/accelerator counts as the host's only if it holds something of its own.
    for path in "${HOST_PATHS[@]}"; do
        if [ "$path" = /var/lib/accelerator ]; then
            find "$path" -mindepth 1 -maxdepth 1 ! -name cluster ! -name registry 2>/dev/null | grep -q . \
                || continue
        fi
        [ -e "$path" ] && echo "existed $path" >>"$tmp"
    done
    for cg in /sys/fs/cgroup/*/k8s.io; do
        [ -d "$cg" ] && echo "existed $cg" >>"$tmp"
    done
    for path in /run/netns/*; do
        [ -e "$path" ] && echo "netns $path" >>"$tmp"
    done
    mv "$tmp" "$HOST_RECORD"
    say "host: recorded sysctls and paths in $HOST_RECORD"
}

# Read into memory by `down` before it removes $STATE, which holds the record.
HOST_BEFORE=""
load_host_record() { HOST_BEFORE=$(cat "$HOST_RECORD" 2>/dev/null || true); }
host_had() { grep -qxF "$1 $2" <<<"$HOST_BEFORE"; }

restore_sysctls() {
    local kind name value
    while read -r kind name value; do
        [ "$kind" = sysctl ] || continue
        [ "$(sysctl -n "$name")" = "$value" ] && continue
        sysctl -qw "$name=$value" || say "WARNING: could not restore $name to $value"
    done <<<"$HOST_BEFORE"
}

# Network namespaces containerd made for sandboxes and did not remove (kubelet stopped before it could).
remove_pod_netns() {
    local ns
    for ns in /run/netns/cni-*; do
        [ -e "$ns" ] || continue
        host_had netns "$ns" && continue
        umount "$ns" 2>/dev/null || true
        rm -f "$ns"
    done
}

remove_created_paths() {
    local path cg
    for path in "${HOST_PATHS[@]}"; do
        host_had existed "$path" && continue
        [ -e "$path" ] || continue
        if [ "$path" = /var/lib/accelerator ] || [ "$path" = /run/netns ] || [ "$path" = /run/mount ]; then
            rmdir "$path" 2>/dev/null || say "WARNING: $path is not empty; left in place"
            continue
        fi
        unmount_under "$path"
        rm -rf --one-file-system "$path" || say "WARNING: could not remove $path"
    done
    for cg in /sys/fs/cgroup/*/k8s.io; do
        [ -d "$cg" ] || continue
        host_had existed "$cg" && continue
        rmdir "$cg" 2>/dev/null || say "WARNING: cgroup $cg still has containers; left in place"
    done
}

# unmount_under <dir>: lazily unmount everything mounted below it, deepest first, so `rm -rf` can follow.
unmount_under() {
    local target
    findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1' | sort -r | while read -r target; do
        umount -l "$target" 2>/dev/null || say "WARNING: could not unmount $target"
    done
}

restore_host() {
    [ -n "$HOST_BEFORE" ] || { say "host: no record of the host before the cluster; nothing to restore"; return; }
    restore_sysctls
    remove_pod_netns
    remove_created_paths
    say "host: sysctls restored, paths the cluster created removed"
}

# Builds the cluster's server binaries once per machine and caches them in $CACHE (sourced by cluster.sh).
#
# No Kubernetes download site or image registry is reachable here, but Debian bookworm's `kubernetes`
# source package is 1.20.2 with its Go dependencies vendored, so it compiles offline with Debian's Go.
# The build tree grows to ~3 GB and takes ~17 minutes on 2 cores; only the binaries (~360 MB) are kept.

K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
BUILD_LOG=$LOGS/build.log

binaries_cached() {
    local bin
    for bin in "${K8S_BINARIES[@]}" pause; do
        [ -x "$CACHE/bin/$bin" ] || return 1
    done
    [ -s "$CACHE/pause-image.tar" ]
}

ensure_binaries() {
    if binaries_cached; then
        say "binaries: $K8S_VERSION cached in $CACHE"
        return
    fi
    apt_install golang-go rsync gcc libc6-dev dpkg-dev
    local avail_kb
    mkdir -p "$(dirname "$BUILD_DIR")" "$LOGS"
    avail_kb=$(df -Pk "$(dirname "$BUILD_DIR")" | awk 'NR == 2 {print $4}')
    [ "$avail_kb" -gt $((5 * 1024 * 1024)) ] \
        || die "building Kubernetes needs 5 GB free in $(dirname "$BUILD_DIR") (has $((avail_kb / 1024)) MB)"
    say "binaries: not cached; building $K8S_VERSION from Debian's source package (~17 min, log $BUILD_LOG)"
    local started=$SECONDS
    rm -rf "$BUILD_DIR"
    # The tree is deleted whatever happens: a failed half-build is 3 GB nobody will resume.
    trap 'rm -rf "$BUILD_DIR"' EXIT
    fetch_source
    compile_kubernetes
    compile_pause
    install_cache
    rm -rf "$BUILD_DIR"
    trap - EXIT
    say "binaries: built in $((SECONDS - started))s and cached in $CACHE"
}

# apt-get source with a deb-src line of its own: the host's apt configuration and lists are left as they were.
fetch_source() {
    local apt="$BUILD_DIR/apt"
    mkdir -p "$apt/lists/partial" "$BUILD_DIR/src"
    echo "deb-src http://deb.debian.org/debian bookworm main" >"$apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
    say "build: downloading the kubernetes source package"
    apt-get -q "${opts[@]}" update >>"$BUILD_LOG" 2>&1 || die "apt-get update for deb-src failed" "$BUILD_LOG"
    (cd "$BUILD_DIR/src" && apt-get -q "${opts[@]}" source --download-only kubernetes) >>"$BUILD_LOG" 2>&1 \
        || die "apt-get source kubernetes failed" "$BUILD_LOG"
    local dsc
    dsc=$(ls "$BUILD_DIR"/src/kubernetes_*.dsc)
    case "$dsc" in
        *really1.20.2*|*_1.20.2-*) ;;
        *) die "the kubernetes source package is not 1.20.2 ($dsc); only bookworm's carries the server" ;;
    esac
    dpkg-source --no-check -x "$dsc" "$BUILD_DIR/kubernetes" >>"$BUILD_LOG" 2>&1 \
        || die "dpkg-source could not unpack $dsc" "$BUILD_LOG"
}

compile_kubernetes() {
    local what="${K8S_BINARIES[*]/#/cmd/}"
    # Offline: vendored modules only. GOCACHE/GOPATH inside the tree so nothing is left in $HOME.
    local env=(GOPROXY=off GOFLAGS=-mod=vendor GO111MODULE=on KUBE_GIT_VERSION="$K8S_VERSION"
        GOCACHE="$BUILD_DIR/gocache" GOPATH="$BUILD_DIR/gopath" HOME="$BUILD_DIR/home")
    local t0=$SECONDS
    say "build: make generated_files"
    (cd "$BUILD_DIR/kubernetes" && env "${env[@]}" nice -n 10 make generated_files) >>"$BUILD_LOG" 2>&1 \
        || die "make generated_files failed" "$BUILD_LOG"
    say "build: generated files in $((SECONDS - t0))s; make WHAT=\"$what\""
    t0=$SECONDS
    (cd "$BUILD_DIR/kubernetes" && env "${env[@]}" nice -n 10 make WHAT="$what") >>"$BUILD_LOG" 2>&1 \
        || die "make WHAT=\"$what\" failed" "$BUILD_LOG"
    say "build: binaries compiled in $((SECONDS - t0))s"
}

# The sandbox ("pause") image cannot be pulled: compile its C program statically from the same tree.
compile_pause() {
    local src="$BUILD_DIR/kubernetes/build/pause/linux/pause.c"
    gcc -Os -Wall -static -DVERSION="v${PAUSE_IMAGE##*:}" -o "$BUILD_DIR/pause" "$src" >>"$BUILD_LOG" 2>&1 \
        || die "gcc could not build the static pause binary from $src" "$BUILD_LOG"
    pause_image_tar "$BUILD_DIR/pause" "$BUILD_DIR/pause-image.tar"
}

# pause_image_tar <binary> <out.tar>: a one-layer image in `docker save` form that `ctr images import` reads.
pause_image_tar() {
    local dir="$BUILD_DIR/pause-image" layer_sha config config_sha
    rm -rf "$dir" && mkdir -p "$dir/rootfs" "$dir/image"
    install -m 0755 "$1" "$dir/rootfs/pause"
    tar --numeric-owner --owner=0 --group=0 -C "$dir/rootfs" -cf "$dir/image/layer.tar" pause
    layer_sha=$(sha256sum "$dir/image/layer.tar" | cut -d' ' -f1)
    config=$(printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"]},%s}' \
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer_sha\"]}")
    config_sha=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
    printf '%s' "$config" >"$dir/image/$config_sha.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$config_sha" "$PAUSE_IMAGE" \
        >"$dir/image/manifest.json"
    tar -C "$dir/image" -cf "$2" manifest.json "$config_sha.json" layer.tar
}

# Written to a temporary name and renamed, so an interrupted copy never looks like a complete cache.
install_cache() {
    local tmp="$CACHE.partial.$$" bin
    rm -rf "$tmp" && mkdir -p "$tmp/bin"
    for bin in "${K8S_BINARIES[@]}"; do
        install -m 0755 "$BUILD_DIR/kubernetes/_output/bin/$bin" "$tmp/bin/$bin" \
            || die "the build did not produce _output/bin/$bin" "$BUILD_LOG"
    done
    install -m 0755 "$BUILD_DIR/pause" "$tmp/bin/pause"
    install -m 0644 "$BUILD_DIR/pause-image.tar" "$tmp/pause-image.tar"
    "$tmp/bin/kube-apiserver" --version >>"$BUILD_LOG" 2>&1 || die "the built kube-apiserver does not run" "$BUILD_LOG"
    rm -rf "$CACHE" && mv "$tmp" "$CACHE"
}

#!/usr/bin/env bash
# Builds the two images the Docker tests run, from files on this machine
# (there is no registry to pull from): acc-test/busybox and acc-test/python.
#
#   scripts/images/build-test-images.sh [busybox|python]...   (default: both)
#
# DOCKER_HOST says which engine gets them. Each image is a `docker import`
# of a rootfs made here; see docs/test-infrastructure.md in the shared docs.
set -euo pipefail

PYTHON_BIN=/usr/bin/python3.11
PYTHON_LIB=/usr/lib/python3.11

die() { echo "build-test-images: $*" >&2; exit 1; }

# Path of a static busybox binary; downloads the Debian package when it is not installed
# (installing it would replace a dynamic `busybox` package some systems depend on).
static_busybox() {
    if dpkg -s busybox-static >/dev/null 2>&1 && [ -x /bin/busybox ]; then
        echo /bin/busybox
        return
    fi
    local dl="$WORK/deb"
    mkdir -p "$dl"
    (cd "$dl" && apt-get download busybox-static >/dev/null) || die "cannot download busybox-static (apt-get update first?)"
    dpkg-deb -x "$dl"/busybox-static_*.deb "$dl/x"
    echo "$dl/x/bin/busybox"
}

# A usr-merged skeleton (like Debian 12) with busybox and every applet linked in.
make_base_rootfs() {
    local root="$1" busybox="$2"
    mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin,etc,root,home,dev,proc,sys,mnt,code,tmp}
    ln -s usr/bin "$root/bin"
    ln -s usr/sbin "$root/sbin"
    ln -s usr/lib "$root/lib"
    ln -s usr/lib64 "$root/lib64"
    chmod 1777 "$root/tmp"
    install -m 0755 "$busybox" "$root/usr/bin/busybox"
    local applet
    for applet in $("$busybox" --list-full); do
        applet="usr/${applet#usr/}"  # bin/x and usr/bin/x both land in usr/
        [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /usr/bin/busybox "$root/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

# Copy a shared library (following symlinks) to the same path inside the rootfs.
copy_lib() {
    local root="$1" lib="$2"
    local dest="$root/usr${lib#/usr}"  # /lib/x, /lib64/x and /usr/lib/x all live under usr/
    mkdir -p "$(dirname "$dest")"
    [ -e "$dest" ] || cp -L "$lib" "$dest"
}

add_python() {
    local root="$1"
    [ -x "$PYTHON_BIN" ] || die "$PYTHON_BIN is missing (apt-get install python3.11)"
    install -m 0755 "$PYTHON_BIN" "$root/usr/bin/python3.11"
    ln -s python3.11 "$root/usr/bin/python3"
    ln -s python3.11 "$root/usr/bin/python"
    tar -C "$(dirname "$PYTHON_LIB")" -c \
        --exclude='python3.11/test' --exclude='*/tests' --exclude='*/idle_test' \
        --exclude='python3.11/config-3.11-*' "$(basename "$PYTHON_LIB")" | tar -C "$root/usr/lib" -x
    local lib
    for lib in $( { ldd "$PYTHON_BIN"; for so in "$PYTHON_LIB"/lib-dynload/*.so; do ldd "$so"; done; } \
        | awk '/=>/ && $3 ~ /^\// {print $3} /^\t\/lib/ {print $1}' | sort -u); do
        copy_lib "$root" "$lib"
    done
}

import_rootfs() {
    local root="$1" tag="$2"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -c . \
        | docker import -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' -c 'CMD ["/bin/sh"]' - "$tag" >/dev/null
}

build() {
    local what="$1" root="$WORK/$1"
    make_base_rootfs "$root" "$BUSYBOX"
    case "$what" in
        busybox) ;;
        python) add_python "$root" ;;
        *) die "unknown image '$what' (busybox|python)" ;;
    esac
    import_rootfs "$root" "acc-test/$what:latest"
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
BUSYBOX="$(static_busybox)"
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(busybox python)
for image in "${images[@]}"; do build "$image"; done

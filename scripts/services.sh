#!/usr/bin/env bash
# Makes sure every real service the tests use is up on this machine:
# PostgreSQL, Redis, a Docker engine on unix:///run/acc-docker.sock with the
# `acc-jobs` network and the acc-test/* images, Chromium, and bubblewrap and
# socat for the local backend's sandbox.
#
# Idempotent and quick when all is in place (~1 s); run as root by `make test`
# and CI on a fresh Debian 12. Anything it cannot provide is an error, never a
# silent skip: it prints why and exits non-zero.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DOCKER_SOCK=unix:///run/acc-docker.sock
DOCKER_NETWORK=acc-jobs
TEST_IMAGES=(busybox python)

say() { printf '%-10s %s\n' "$1" "$2"; }
die() { printf '%-10s FAILED: %s\n' "$1" "$2" >&2; exit 1; }

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die apt "apt-get update failed"
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die apt "apt-get install $* failed"
}

# wait_for <seconds> <command...>: true once the command succeeds, false after the time is up.
wait_for() {
    local tries=$(($1 * 10)); shift
    while ! "$@" >/dev/null 2>&1; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || return 1
        sleep 0.1
    done
}

ensure_postgres() {
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        say postgres "running on 127.0.0.1:5432"
        return
    fi
    command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ] || die postgres "PostgreSQL is not installed"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start \
        || die postgres "pg_ctlcluster could not start the cluster"
    wait_for 15 pg_isready -q -h 127.0.0.1 -p 5432 || die postgres "started but not accepting connections on 5432"
    say postgres "started on 127.0.0.1:5432"
}

redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

ensure_redis() {
    if command -v redis-cli >/dev/null && redis_up; then
        say redis "running on 127.0.0.1:6379"
        return
    fi
    command -v redis-server >/dev/null || { say redis "installing redis-server"; apt_install redis-server; }
    redis_up && { say redis "running on 127.0.0.1:6379"; return; }  # the package may have started it
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null || die redis "redis-server did not start"
    wait_for 10 redis_up || die redis "started but does not answer PING (see /var/log/redis/ci.log)"
    say redis "started on 127.0.0.1:6379"
}

docker_cli() { docker -H "$DOCKER_SOCK" "$@"; }

ensure_docker() {
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
        say docker "installing docker.io"
        apt_install docker.io
    fi
    if docker_cli info >/dev/null 2>&1; then
        say docker "engine running on $DOCKER_SOCK"
        return
    fi
    # setsid: the engine outlives this script and the `make` that ran it.
    setsid dockerd --host "$DOCKER_SOCK" --data-root /var/lib/acc-docker \
        --exec-root /run/acc-docker --pidfile /run/acc-docker.pid \
        --bridge=none --iptables=false >/var/log/acc-dockerd.log 2>&1 </dev/null &
    if ! wait_for 30 docker_cli info; then
        tail -n 20 /var/log/acc-dockerd.log >&2 || true
        die docker "dockerd did not become ready on $DOCKER_SOCK (log: /var/log/acc-dockerd.log)"
    fi
    say docker "engine started on $DOCKER_SOCK"
}

ensure_network() {
    if docker_cli network inspect "$DOCKER_NETWORK" >/dev/null 2>&1; then
        say network "$DOCKER_NETWORK exists"
        return
    fi
    docker_cli network create --label acc.managed=1 "$DOCKER_NETWORK" >/dev/null \
        || die network "cannot create the docker network $DOCKER_NETWORK"
    say network "$DOCKER_NETWORK created"
}

join_images() { local IFS=' '; printf 'acc-test/%s:latest ' "$@" | sed 's/ $//'; }

ensure_images() {
    local missing=() image
    for image in "${TEST_IMAGES[@]}"; do
        docker_cli image inspect "acc-test/$image:latest" >/dev/null 2>&1 || missing+=("$image")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say images "$(join_images "${TEST_IMAGES[@]}") present"
        return
    fi
    DOCKER_HOST="$DOCKER_SOCK" "$HERE/images/build-test-images.sh" "${missing[@]}" \
        || die images "building $(join_images "${missing[@]}") failed"
    say images "built $(join_images "${missing[@]}")"
}

ensure_chromium() {
    if [ -x /usr/bin/chromium ]; then
        say chromium "/usr/bin/chromium present"
        return
    fi
    say chromium "installing chromium"
    apt_install chromium
    [ -x /usr/bin/chromium ] || die chromium "apt installed chromium but /usr/bin/chromium is missing"
    say chromium "installed /usr/bin/chromium"
}

ensure_compose() {
    # validates docker-compose.yml in the suite; Debian ships Compose as `docker-compose`
    if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; then
        say compose "present"
        return
    fi
    apt_install docker-compose
    command -v docker-compose >/dev/null || die compose "apt installed docker-compose but it is not on PATH"
    say compose "installed docker-compose"
}

ensure_sandbox() {
    # the local backend runs each job in a bubblewrap sandbox and reaches a TCP session through socat
    if command -v bwrap >/dev/null && command -v socat >/dev/null; then
        say sandbox "bubblewrap and socat present"
        return
    fi
    say sandbox "installing bubblewrap socat"
    apt_install bubblewrap socat
    command -v bwrap >/dev/null && command -v socat >/dev/null \
        || die sandbox "apt installed bubblewrap and socat but bwrap or socat is not on PATH"
    say sandbox "installed bubblewrap and socat"
}

ensure_stress() {
    # tests that race (parallel builds) run beside a CPU load, as a busy machine would give them
    if command -v stress-ng >/dev/null; then
        say stress "stress-ng present"
        return
    fi
    say stress "installing stress-ng"
    apt_install stress-ng
    command -v stress-ng >/dev/null || die stress "apt installed stress-ng but it is not on PATH"
    say stress "installed stress-ng"
}

[ "$(id -u)" = 0 ] || echo "services.sh: not root; starting or installing anything will fail" >&2
ensure_postgres
ensure_redis
ensure_docker
ensure_network
ensure_images
ensure_chromium
ensure_compose
ensure_sandbox
ensure_stress

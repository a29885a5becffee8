#!/usr/bin/env bash
# `make test`: start the services the suite needs (where not running) and run it against them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/accelerator}"
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/9}"
export DOCKER_HOST="${DOCKER_HOST:-unix:///run/acc-docker.sock}"
export ACC_DATA_DIR="${ACC_TEST_DATA_DIR:-$PWD/var/test}"
export ACC_DOCKER_NETWORK="${ACC_DOCKER_NETWORK:-none}"
export ACC_STOP_GRACE=2
export ACC_INSTANCE="${ACC_INSTANCE:-test}"
rm -rf "$ACC_DATA_DIR"; mkdir -p "$ACC_DATA_DIR"
# The kubernetes backend's tests run on a real single-node cluster (scripts/cluster.sh: built once per machine,
# then started in seconds); a cluster that cannot start fails `make test`.
KUBECONFIG="$(bash scripts/cluster.sh up | tail -1)"
export KUBECONFIG
export ACC_K8S_REGISTRY="${ACC_K8S_REGISTRY:-127.0.0.1:5000}"
export ACC_K8S_HELPER_IMAGE="${ACC_K8S_HELPER_IMAGE:-acc-test/busybox:latest}"
export ACC_K8S_PIPE_HOST_DIR="$ACC_DATA_DIR/pipes"
# the test node has 2 cores: pods request 5% of their routine's cores and RAM, so parallel jobs fit
export ACC_K8S_REQUEST_FRACTION="${ACC_K8S_REQUEST_FRACTION:-0.05}"
# The suite mostly waits (Celery workers, containers, pods, a browser): it runs on ACC_TEST_WORKERS pytest-xdist
# processes side by side (default 2: 20 min instead of 42 on a 2-core machine), each on services of its own
# (tests/xdist_isolation.py). ACC_TEST_WORKERS=1 runs it serially (as --pdb needs).
# loadgroup keeps the tests marked xdist_group(name) on one worker.
WORKERS="${ACC_TEST_WORKERS:-2}"
XDIST=()
[ "$WORKERS" -gt 1 ] && XDIST=(-n "$WORKERS" --dist loadgroup)
exec .venv/bin/pytest "${XDIST[@]}" "$@"

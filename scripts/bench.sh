#!/usr/bin/env bash
# `make bench`: start the services (PostgreSQL, Redis, the Docker engine, test images) where not
# running, then run the spine, jobflow, live-log, page, interactive-proxy, upload and scale benchmarks.
# Results: bench/results/{spine,flows,live,pages,proxy,upload,scale,kube}.{json,md}.
# Extra arguments go to bench/run.py (see `.venv/bin/python bench/run.py --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
# the proxy benchmark's load generator (C, so it leaves the CPUs to the servers it measures)
if ! command -v wrk >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
        || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
fi
export DOCKER_HOST="${DOCKER_HOST:-unix:///run/acc-docker.sock}"
.venv/bin/python bench/run.py "$@"
.venv/bin/python bench/flows.py
.venv/bin/python bench/live.py
.venv/bin/python bench/pages.py
.venv/bin/python bench/proxy.py
.venv/bin/python bench/upload.py
.venv/bin/python bench/xet.py      # accli copy (Xet) of 256 MiB files both ways beside cp, and the server's RSS
.venv/bin/python bench/scale.py   # ~20 min on 2 CPUs; `bench/scale.py --small` for a quick check
# the kubernetes backend on the test cluster (scripts/cluster.sh: built once per machine, then up in seconds)
KUBECONFIG="$(bash scripts/cluster.sh up | tail -1)"
export KUBECONFIG ACC_K8S_REGISTRY="${ACC_K8S_REGISTRY:-127.0.0.1:5000}"
.venv/bin/python bench/kube.py

# The README's commands. Everything installs what is missing first.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: install run test bench lint sandbox cluster cluster-down

install: $(STAMP) sandbox

# The local backend runs each job in a bubblewrap sandbox and reaches a TCP session through socat.
sandbox:
	@if ! command -v bwrap >/dev/null || ! command -v socat >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing bubblewrap and socat (the local backend's sandbox)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap socat >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap socat >/dev/null; } || \
	    echo "apt-get could not install bubblewrap and socat; local jobs are refused until they are installed"; \
	  else \
	    echo "The local backend runs jobs in a bubblewrap sandbox, which is missing: install it with"; \
	    echo "  sudo apt-get install bubblewrap socat   (Debian, Ubuntu)   or   sudo dnf install bubblewrap socat"; \
	    echo "Until then local jobs are refused (ACC_LOCAL_UNSANDBOXED_UNSAFE=true runs them unisolated)."; \
	  fi; \
	fi

$(STAMP): pyproject.toml uv.lock client/pyproject.toml $(wildcard package.json package-lock.json)
	@command -v python3 >/dev/null || { echo "python3 (3.11) is required"; exit 1; }
	@test -x .venv/bin/python || python3 -m venv .venv
	@test -x .venv/bin/uv || { .venv/bin/python -m ensurepip -q >/dev/null 2>&1; \
	  .venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9; }
	@.venv/bin/uv sync --frozen --inexact -q
	@if [ -f package.json ]; then npm ci --no-audit --no-fund --loglevel=error; fi
	@touch $(STAMP)

run: install
	@$(PY) scripts/serve.py

test: install
	@bash scripts/test.sh $(ARGS)

bench: install
	@bash scripts/bench.sh

lint: install
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

# A single-node Kubernetes cluster (built once, then cached) with a registry on 127.0.0.1:5000; the last line is
# the admin kubeconfig's path. cluster-down stops it and undoes its changes to the host.
cluster:
	@bash scripts/cluster.sh up

cluster-down:
	@bash scripts/cluster.sh down

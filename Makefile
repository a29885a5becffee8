# The README's commands. Everything installs what is missing first.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: install run test bench lint

install: $(STAMP)

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

# Two commands set everything up: `make serve` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SITE_PORT ?= 8000

.PHONY: install serve build lint test test-fast lab release linkcheck bench system-deps clean

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# The CPU build of PyTorch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e '.[tensorflow,torch,hf,docs,cluster,dev]'
	@touch $@

install: $(INSTALLED)

build: $(INSTALLED)
	$(BIN)/mkdocs build --strict

serve: build
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:$(SITE_PORT)

# What the tests need beyond Python, from Debian's packages: headless Chromium and a CJK font
# (browser tests), PostgreSQL (cluster tests). Installed when root with apt-get; else explained.
system-deps:
	@bash tests/browser/ensure_chromium.sh
	@bash tests/ensure_postgres.sh

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Everything: lint, then every test (sandboxes, frameworks, the cluster, the browser).
test: lint system-deps
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

# The inner loop: everything that starts no sandbox, kernel, framework, cluster or browser.
test-fast: $(INSTALLED)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not slow and not browser"

lab: $(INSTALLED)
	$(BIN)/jupyter lab notebooks/

# Regenerates notebooks/ (the learners' versions) from solutions/.
release: $(INSTALLED)
	$(BIN)/grader release

linkcheck: $(INSTALLED)
	$(BIN)/grader resources --online

bench: $(INSTALLED)
	$(BIN)/python -m bench

clean:
	rm -rf site .pytest_cache

# Two commands matter: `make demo` and `make test`. Both install what they
# need on a fresh Debian machine (Python packages in .venv, the pinned Pyodide
# from package-lock.json, Debian's chromium for the browser tests).

PYTHON ?= python3
# `make demo PORT=9700 SITE_PORT=9701`: the widget origin's and the demo site's ports.
PORT      ?= 8700
SITE_PORT ?= 8701
# The studio (docs/studio.md) on a working copy of the demo's messages: `make demo STUDIO_PORT=9702`.
STUDIO_PORT ?= 8702
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-unit test-e2e build bench wheel install chromium services clean

# The demo signs .data/studio-messages.yaml (a copy of demo/messages.yaml, made once) at every
# start; the studio edits that copy and publishes into the demo's bundle with the demo's key.
demo: install build
	@mkdir -p .data && { test -f .data/studio-messages.yaml || cp demo/messages.yaml .data/studio-messages.yaml; }
	@echo "==> Serving the demo and the studio (Ctrl-C stops both)"
	@{ for i in $$(seq 100); do test -f .data/bundles/demo.json && break; sleep 0.2; done; \
	   exec $(BIN)/proactive studio .data/studio-messages.yaml --key .data/demo-signing.key \
	     --bundle .data/bundles/demo.json --port $(STUDIO_PORT); } & studio=$$!; \
	 trap 'kill $$studio 2>/dev/null' EXIT INT TERM; \
	 $(BIN)/proactive serve --port $(PORT) --site-port $(SITE_PORT) --messages .data/studio-messages.yaml

test: install chromium services build
	$(BIN)/python -m pytest tests e2e

test-unit: install services
	$(BIN)/python -m pytest tests

test-e2e: install chromium build
	$(BIN)/python -m pytest e2e

bench: install chromium build bench/lighthouse/node_modules/.package-lock.json
	$(BIN)/python bench/run.py
	$(BIN)/python bench/lighthouse.py

# Lighthouse for the bench only (not for `make test`): its own pinned package.
bench/lighthouse/node_modules/.package-lock.json: bench/lighthouse/package-lock.json
	npm ci --prefix bench/lighthouse --no-audit --no-fund

build: install
	@echo "==> Building the widget into dist/widget (compiles the runtime under Pyodide: up to a minute the first time)"
	$(BIN)/proactive build

# The package as a wheel (dist/proactive_chat-VERSION-py3-none-any.whl): the
# CLI and the QA kit's pytest plugin, for `pip install` in another project
# (docs/qa.md). setuptools builds in build/lib: removed, build/ is ours.
wheel: install
	rm -f dist/proactive_chat-*.whl
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .
	rm -rf build/lib build/bdist.*
	@ls dist/proactive_chat-*.whl

install: $(STAMP) node_modules/.package-lock.json

$(STAMP): pyproject.toml requirements.lock
	@echo "==> Installing the Python packages into $(VENV) (about a minute the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	@echo "==> Installing Pyodide from npm into node_modules (package-lock.json)"
	npm ci --no-audit --no-fund --loglevel=error

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium (Playwright cannot download browsers here)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The endpoint's tests start throwaway PostgreSQL and Redis servers
# (tests/services.py): Debian's packages provide the programs.
services:
	@{ ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1; } || { \
	  echo "Installing Debian's postgresql and redis-server (the endpoint's tests start their own instances)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql redis-server >/dev/null; }

clean:
	rm -rf dist .data $(VENV) node_modules

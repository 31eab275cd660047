# Fresh machine: `make run` installs and serves the gateway; `make test` installs and runs all checks.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
NODE_CLIENTS := tests/e2e/node

.PHONY: run test install install-test lint bench system-deps

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[speed]'

install-test: $(BIN)/python .venv-tap/bin/python $(NODE_CLIENTS)/node_modules/.package-lock.json
	$(BIN)/pip install -q -e '.[speed,test]'

# The Node.js Harvest client the end-to-end tests drive, at the versions its lockfile pins.
$(NODE_CLIENTS)/node_modules/.package-lock.json: $(NODE_CLIENTS)/package.json $(NODE_CLIENTS)/package-lock.json
	npm ci --prefix $(NODE_CLIENTS) --no-audit --no-fund

# tap-harvest pins its own requests, so the end-to-end test runs it from a virtualenv of its own.
.venv-tap/bin/python:
	$(PY) -m venv .venv-tap
	.venv-tap/bin/pip install -q tap-harvest==3.1.1

run: install
	$(BIN)/harvest-gateway serve

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

system-deps:
	scripts/system-deps

test: system-deps lint
	$(BIN)/pytest

bench: install-test
	$(BIN)/python -m bench.run_all

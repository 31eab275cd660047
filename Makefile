# Fresh machine: `make run` installs and serves the gateway; `make test` installs and runs all checks.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test lint bench system-deps

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[speed]'

install-test: $(BIN)/python .venv-tap/bin/python
	$(BIN)/pip install -q -e '.[speed,test]'

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

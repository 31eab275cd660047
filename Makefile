# Fresh machine: `make run` installs and serves the gateway; `make test` installs and runs all checks.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test lint bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[speed]'

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[speed,test]'

run: install
	$(BIN)/harvest-gateway serve

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: install-test
	$(BIN)/python -m bench.run_all

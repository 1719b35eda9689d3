# Crossway — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROTOS := $(wildcard protos/crossway/v1/*.proto) protos/demo/population/v1/population.proto protos/demo/business/v1/business.proto

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## create .venv and install Crossway with its dev tools

.PHONY: run
run: $(STAMP) ## bring up the demo federation (NATS, registry, 2 gateways, backend) and keep it up
	$(BIN)/crossway demo

.PHONY: demo
demo: $(STAMP) ## run the demo scenario once and exit (0 when every outcome is as expected)
	$(BIN)/crossway demo --once

.PHONY: test
test: $(STAMP) ## run the whole test suite (unit + integration, real processes)
	$(BIN)/pytest

.PHONY: bench
bench: $(STAMP) ## measure direct vs proxy chain vs crossway; writes bench/results/latest.json (~3 min)
	$(BIN)/python -m bench

.PHONY: lint
lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: typecheck
typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy crossway gateway registry policies adapters bench audit

.PHONY: protos
protos: $(STAMP) ## regenerate the Python code of the protos (committed)
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)

.PHONY: protos-check
protos-check: $(STAMP) ## fail when the committed generated code is stale
	@tmp=$$(mktemp -d) && \
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTOS) && \
	for f in $$(cd $$tmp && find . -name '*.py*' -type f); do \
	  cmp -s "$$tmp/$$f" "$$f" || { echo "stale generated code: $$f (run make protos)"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "generated protobuf code is fresh"

.PHONY: check
check: lint typecheck protos-check test ## everything CI should hold: lint, types, fresh protos, tests

.PHONY: clean
clean: ## remove the virtualenv, caches and demo state
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

.PHONY: help
help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

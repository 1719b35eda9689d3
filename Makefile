# Crossway — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Any Python from 3.11 on: `make demo PYTHON=python3.13` or `PYTHON=python3.13 make demo`.
PYTHON ?= python3
# $(PYTHON) as the absolute path of a working interpreter, and its version. pyenv keeps the
# versions it has but does not select behind shims that fail (python3.13 while `pyenv global`
# names 3.11), so a name that does not run is also looked for among pyenv's versions.
PYINFO := $(shell for p in $(PYTHON) $${PYENV_ROOT:-$$HOME/.pyenv}/versions/*/bin/$(PYTHON); do \
  $$p -c 'import platform, sys; print(sys.executable, platform.python_version())' 2>/dev/null && break; done)
PY := $(word 1,$(PYINFO))
PYVER := $(word 2,$(PYINFO))

VENV := .venv
BIN := $(VENV)/bin
# The stamp names the interpreter's version: a venv built by another Python has none of that name,
# so it is rebuilt rather than reused.
STAMP := $(VENV)/.installed-python-$(PYVER)
PROTOS := $(wildcard protos/crossway/v1/*.proto) protos/demo/population/v1/population.proto protos/demo/business/v1/business.proto

# From scratch each time: the venv then holds exactly constraints.txt, nothing left from before.
$(STAMP): pyproject.toml constraints.txt
	@if [ -z "$(PY)" ]; then \
	  echo "make: no Python '$(PYTHON)': not on PATH, nor among pyenv's versions. Install it, or name another: make $(MAKECMDGOALS) PYTHON=python3.12" >&2; \
	  exit 1; fi
	@if [ -f $(VENV)/pyvenv.cfg ]; then \
	  was=$$(sed -n 's/^version = //p' $(VENV)/pyvenv.cfg); \
	  if [ "$$was" != "$(PYVER)" ]; then echo "$(VENV) was built with Python $$was: rebuilding it"; \
	  else echo "$(VENV) is older than pyproject.toml or constraints.txt, or incomplete: rebuilding it"; fi; fi
	@echo "using $(PY) (Python $(PYVER)) for $(VENV)"
	rm -rf $(VENV)
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt --build-constraint constraints.txt -e '.[dev]'
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## create .venv and install Crossway with its dev tools, exactly as in constraints.txt

.PHONY: python
python: ## say which interpreter make uses (PYTHON=..., default python3); fail if there is none
	@if [ -z "$(PY)" ]; then echo "no Python '$(PYTHON)': not on PATH, nor among pyenv's versions" >&2; exit 1; fi
	@echo "$(PY) (Python $(PYVER))"

.PHONY: run
run: $(STAMP) ## bring up the demo federation (NATS, registry, 2 gateways, backend) and keep it up
	$(BIN)/crossway demo

.PHONY: demo
demo: $(STAMP) ## run the demo scenario once and exit (0 when every outcome is as expected)
	$(BIN)/crossway demo --once

.PHONY: test
test: $(STAMP) ## run the whole test suite (unit + integration, real processes)
	$(BIN)/pytest

.PHONY: test-unit
test-unit: $(STAMP) ## run the unit tests only (no network, no processes; ~10 s)
	$(BIN)/pytest tests/unit

.PHONY: compat
compat: ## on another Python, in its own .venv-X.Y: unit tests and the demo once (make compat PYTHON=python3.13)
	$(MAKE) --no-print-directory VENV=.venv-$(basename $(PYVER)) test-unit demo

.PHONY: wheel-check
wheel-check: $(STAMP) ## build the wheel, install it in a fresh venv, run the demo once from another folder
	rm -rf build/wheel-check && mkdir -p build/wheel-check
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w build/wheel-check .
	$(PY) -m venv build/wheel-check/venv
	build/wheel-check/venv/bin/python -m pip install --quiet -c constraints.txt build/wheel-check/crossway-*.whl
	@# Nothing of the checkout may be needed: run from an empty folder, and nothing may land in site-packages.
	mkdir -p build/wheel-check/elsewhere && cd build/wheel-check/elsewhere && ../venv/bin/crossway demo --once --workdir demo
	@site=$$(build/wheel-check/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  if [ -e "$$site/.tools" ] || [ -n "$$(find $$site -name node_modules -print -quit)" ]; then \
	    echo "wheel-check: runtime tools were written into $$site" >&2; exit 1; fi; \
	  echo "wheel-check: the installed wheel ran the demo; nothing was written into site-packages"

.PHONY: bench
bench: $(STAMP) ## measure direct vs proxy chain vs crossway; writes bench/results/latest.json (~3 min)
	$(BIN)/python -m bench

.PHONY: lint
lint: $(STAMP) ## ruff lint and format check, and the import contracts of .importlinter (the layers)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

.PHONY: typecheck
typecheck: $(STAMP) ## mypy --strict over every product package
	$(BIN)/mypy crossway gateway registry policies adapters bench audit console

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
check: lint typecheck protos-check test ## everything CI holds: lint and import contracts, types, fresh protos, tests

.PHONY: constraints
constraints: ## re-resolve pyproject.toml's ranges to the newest releases into constraints.txt (then test them)
	@test -n "$(PY)" || { echo "no Python '$(PYTHON)'" >&2; exit 1; }
	rm -rf .venv-constraints
	$(PY) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet --upgrade pip
	.venv-constraints/bin/python -m pip install --quiet -e '.[dev]'
	{ grep '^#' constraints.txt; .venv-constraints/bin/python -m pip freeze --all --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

.PHONY: clean
clean: ## remove the virtualenvs, caches and demo state
	rm -rf $(VENV) .venv-[0-9]* var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache

.PHONY: help
help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

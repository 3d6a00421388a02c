# Two commands for a newcomer: `make demo` (the product's main job on embedded defaults, locally)
# and `make test` (lint + Bicep checks + the whole test suite). Both create the virtual
# environments as needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# checkov gets its own environment: its pinned dependencies clash with the runtime pins.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

# The peer's environment for the benchmarks: msgraph-sdk as pip resolves it (+ sniffio aside).
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: demo test lint infra-check bench mutate clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
	touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

demo: $(STAMP)
	$(BIN)/python -m cancel_handler.demo

lint: $(STAMP)
	$(BIN)/ruff check .

# Parses every infra/*.bicep file and scans it with checkov (no Bicep compiler needed).
infra-check: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/python infra/check.py

test: lint infra-check
	$(BIN)/python -m pytest

$(BENCH_STAMP): bench/requirements-peers.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements-peers.txt
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check \
		--target $(BENCH_VENV)/sniffio-extra sniffio==1.3.1
	touch $(BENCH_STAMP)

# Every benchmark in one run (about 5 minutes on 2 cores); writes docs/performance.md.
bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python -m bench.run

# mutmut runs the fast tests in-process, so it joins the test environment.
MUTATE_STAMP := $(VENV)/.mutate-installed
$(MUTATE_STAMP): $(STAMP) requirements-mutate.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-mutate.txt
	touch $(MUTATE_STAMP)

# Mutation testing of the core modules ([tool.mutmut] in pyproject.toml) with the fast tests and
# 2 workers, then the hand-made mutants mutmut cannot make (mutation/outside.toml); prints the
# score per module and, after a full run, writes it to docs/reliability.md. Not part of `test`:
# about 30-40 minutes on 2 cores. One module while iterating (no docs written):
#   make mutate MUTANTS='cancel_handler.graph.limiter.*'
MUTANTS ?=
mutate: $(MUTATE_STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	status=0; \
	if [ -z "$(MUTANTS)" ]; then $(BIN)/python -m mutation.outside || status=1; fi; \
	$(BIN)/python -m mutation.report --write-docs || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(BENCH_VENV) .pytest_cache .ruff_cache mutants

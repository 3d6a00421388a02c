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

# The Python the Function App runs on (infra/app/function.bicep; docs/deploy.md says why).
# Microsoft's library worker (azure-functions-runtime) runs only there, so the worker-contract
# test gets its own environment from that Python of this machine: WORKER_PYTHON if given, else
# python3.13 on PATH, else pyenv's 3.13.x.
APP_PYTHON_VERSION := 3.13
WORKER_VENV   := .venv-worker
WORKER_STAMP  := $(WORKER_VENV)/.installed
WORKER_PYTHON ?=

# The peer's environment for the benchmarks: msgraph-sdk as pip resolves it (+ sniffio aside).
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: demo test lint infra-check worker-test bench mutate clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
	touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

$(WORKER_STAMP): requirements.txt requirements-worker.txt
	@want=$(APP_PYTHON_VERSION); candidates="$(WORKER_PYTHON)"; py=; \
	if [ -z "$$candidates" ]; then \
		candidates="python$$want $$(ls -d \
			"$${PYENV_ROOT:-$${HOME:-/root}/.pyenv}"/versions/$$want*/bin/python$$want \
			"$$(pyenv root 2>/dev/null)"/versions/$$want*/bin/python$$want 2>/dev/null)"; \
	fi; \
	for candidate in $$candidates; do \
		if "$$candidate" -c "import sys; sys.exit(sys.version[:len('$$want.')] != '$$want.')" \
			>/dev/null 2>&1; then py="$$candidate"; break; fi; \
	done; \
	if [ -z "$$py" ]; then \
		echo "make worker-test needs Python $$want, the Function App's Python, where Microsoft's" >&2; \
		echo "worker (azure-functions-runtime) runs; found none (python$$want on PATH, pyenv)." >&2; \
		echo "Install one (pyenv install $$want, or apt-get install python$$want where the" >&2; \
		echo "distribution has it), or name it: make test WORKER_PYTHON=/path/to/python$$want" >&2; \
		exit 1; \
	fi; \
	echo "worker-test uses $$py"; \
	"$$py" -m venv $(WORKER_VENV)
	$(WORKER_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-worker.txt
	touch $(WORKER_STAMP)

demo: $(STAMP)
	$(BIN)/python -m cancel_handler.demo

lint: $(STAMP)
	$(BIN)/ruff check .

# Parses every infra/*.bicep file, scans it with checkov and checks every resource against Azure's
# published resource types in infra/types/ (no Bicep compiler needed).
infra-check: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/python infra/check.py

# Microsoft's library worker indexes, loads and invokes function_app.py (tests_worker/).
worker-test: $(WORKER_STAMP)
	$(WORKER_VENV)/bin/python -m pytest tests_worker

test: lint infra-check worker-test
	$(BIN)/python -m pytest

$(BENCH_STAMP): bench/requirements-peers.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements-peers.txt
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check \
		--target $(BENCH_VENV)/sniffio-extra sniffio==1.3.1
	touch $(BENCH_STAMP)

# Every benchmark in one run (about 11 minutes on 2 cores: 6 for the fleet simulation, which
# `python -m bench.fleet` runs alone); writes docs/performance.md.
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
# about an hour on 2 cores (53 min for 3,431 mutants). One module while iterating (no docs written):
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
	rm -rf $(VENV) $(CHECKOV_VENV) $(WORKER_VENV) $(BENCH_VENV) .pytest_cache .ruff_cache mutants

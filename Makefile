# Two commands for a newcomer: `make demo` (the product's main job on embedded defaults, locally)
# and `make test` (lint + the whole test suite). Both create the virtual environment as needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

# The peer's environment for the benchmarks: msgraph-sdk as pip resolves it (+ sniffio aside).
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m cancel_handler.demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
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

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache

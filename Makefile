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

.PHONY: demo test lint infra-check clean

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

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache

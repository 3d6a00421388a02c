# Two commands for a newcomer: `make demo` (the product's main job on embedded defaults, locally)
# and `make test` (lint + Bicep checks + the whole test suite). Both create the virtual
# environments as needed.

# One Python for everything (tests, demo, command line, Microsoft's worker): the Function App's,
# as infra/app/function.bicep deploys it (docs/deploy.md says why). PYTHON names it; otherwise
# python3.13 on PATH, pyenv's 3.13.x, or python3 when that is 3.13.
APP_PYTHON_VERSION := 3.13
PYTHON ?=
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Prints the Python to use, or says on stderr which ones it found and how to get the right one.
define FIND_APP_PYTHON
want=$(APP_PYTHON_VERSION); candidates="$(PYTHON)"; seen=; \
if [ -z "$$candidates" ]; then \
	candidates="python$$want $$(ls -d \
		"$${PYENV_ROOT:-$${HOME:-/root}/.pyenv}"/versions/$$want*/bin/python$$want \
		"$$(pyenv root 2>/dev/null)"/versions/$$want*/bin/python$$want 2>/dev/null) python3"; \
fi; \
for candidate in $$candidates; do \
	version=$$("$$candidate" -c "import sys; print('%d.%d.%d' % sys.version_info[:3])" \
		2>/dev/null) || continue; \
	case "$$version" in \
		"$$want".*) echo "$$candidate"; exit 0;; \
		*) seen="$${seen:+$$seen, }$$candidate (Python $$version)";; \
	esac; \
done; \
echo "make needs Python $$want, the Function App's Python (infra/app/function.bicep), for" >&2; \
echo "everything: tests, demo, command line and Microsoft's worker. Found: $${seen:-none}." >&2; \
echo "Install it (pyenv install $$want, or apt-get install python$$want where the" >&2; \
echo "distribution has it), or name it: make test PYTHON=/path/to/python$$want" >&2; \
exit 1
endef

# checkov gets its own environment (and the machine's python3): its pinned dependencies clash
# with the runtime pins.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

# The peer's environment for the benchmarks: msgraph-sdk as pip resolves it (+ sniffio aside).
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: demo test lint infra-check worker-test bench mutate clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@py=$$($(FIND_APP_PYTHON)) || exit 1; \
	if [ -x $(BIN)/python ] && ! $(BIN)/python -c "import sys; \
		sys.exit(sys.version_info[:2] != tuple(map(int, '$(APP_PYTHON_VERSION)'.split('.'))))"; \
	then echo "$(VENV) is not Python $(APP_PYTHON_VERSION): making it anew"; rm -rf $(VENV); fi; \
	echo "$(VENV) uses $$py"; "$$py" -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
	touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

# `make demo SPANS=1` also prints the function's spans (OTLP instead when
# OTEL_EXPORTER_OTLP_ENDPOINT is set, e.g. http://localhost:4318 for a local collector).
demo: $(STAMP)
	$(BIN)/python -m cancel_handler.demo $(if $(SPANS),--spans)

lint: $(STAMP)
	$(BIN)/ruff check .

# Parses every infra/*.bicep file, scans it with checkov and checks every resource against Azure's
# published resource types in infra/types/ (no Bicep compiler needed).
infra-check: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/python infra/check.py

# Microsoft's library worker indexes, loads and invokes function_app.py (tests_worker/).
worker-test: $(STAMP)
	$(BIN)/python -m pytest tests_worker

test: lint infra-check worker-test
	$(BIN)/python -m pytest

$(BENCH_STAMP): bench/requirements-peers.txt
	python3 -m venv $(BENCH_VENV)
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
	rm -rf $(VENV) $(CHECKOV_VENV) $(BENCH_VENV) .pytest_cache .ruff_cache mutants

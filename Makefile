# Traject developer entry points.
#
#   make venv                       create .venv, install traject + test extras
#   make run                        migrate, load demo data, serve http://127.0.0.1:5000
#   make test                       run the tests against a throwaway PostgreSQL
#   make test PYTEST_ARGS='-x -k escalation'
#
# `make test` uses scripts/with-postgres: set TEST_POSTGRES_URL to use an
# existing database instead of a throwaway cluster.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
PYTEST_ARGS ?=

# The demo runs in development mode so that no SECRET_KEY is needed.
RUN_ENV     := TRAJECT_ENV=development

.DEFAULT_GOAL := help

.PHONY: help venv run test bench bench-quick

help:
	@echo "make venv   - create $(VENV) and install traject with test extras"
	@echo "make run    - db upgrade + demo data, then serve http://127.0.0.1:5000"
	@echo "make test   - pytest against a throwaway PostgreSQL (PYTEST_ARGS='...')"
	@echo "make bench  - benchmarks (bench/) on SQLite and a throwaway PostgreSQL: bench/RESULTS.md"
	@echo "make bench-quick - the same, smaller, about a minute: bench/RESULTS-quick.md"

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(RUN_ENV) $(BIN)/traject db upgrade
	$(RUN_ENV) $(BIN)/traject demo
	$(RUN_ENV) $(BIN)/traject run

test: venv
	PYTHON=$(BIN)/python scripts/with-postgres scripts/test-suite $(PYTEST_ARGS)

# Benchmarks (bench/): never part of `make test`. The `bench` extra brings SpiffWorkflow, gunicorn,
# psutil and py-spy; scripts/with-postgres a throwaway cluster, whose fsync the full run switches on for a
# moment (--durable-pg; never when TEST_POSTGRES_URL points at a database of yours).
$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	BENCH_COMMAND="make bench" scripts/with-postgres $(BIN)/python -m bench.run $(if $(TEST_POSTGRES_URL),,--durable-pg)

bench-quick: $(VENV)/.bench-installed
	BENCH_COMMAND="make bench-quick" scripts/with-postgres $(BIN)/python -m bench.run --quick

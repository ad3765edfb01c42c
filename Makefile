# allocstudy: two commands on a fresh machine.
#   make study     set up, run specs/quick.yaml, build the site into site/
#   make test      set up, run the suite without its `slow` tests (after every change)
#   make test-all  set up, run every test (before a merge; .ci/run runs it in strict mode)
# All call `make setup`, which is idempotent.

VENV := .venv
PY := $(VENV)/bin/python
SPEC ?= specs/quick.yaml

.PHONY: setup study run site test test-all check lint bench clean

setup:
	@bash scripts/setup.sh

study: setup
	$(VENV)/bin/allocstudy run $(SPEC)
	$(VENV)/bin/mkdocs build --strict

run: setup
	$(VENV)/bin/allocstudy run $(SPEC)

site: setup
	$(VENV)/bin/mkdocs build --strict

test: setup
	$(PY) -m pytest -q -m "not slow"

test-all: setup
	$(PY) -m pytest -q

check: setup lint test-all

lint: setup
	$(VENV)/bin/ruff check bench service tests benchmarks
	$(VENV)/bin/ruff format --check bench service tests benchmarks

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf site .pytest_cache .ruff_cache

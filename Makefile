# allocstudy: two commands on a fresh machine.
#   make study     set up, run specs/quick.yaml, build the site into site/
#   make test      set up, run the suite without its `slow` tests (after every change)
#   make test-all  set up, run every test (before a merge; .ci/run runs it in strict mode)
#   make lock      renew constraints.txt, the exact versions make setup installs
# All call `make setup`, which is idempotent.

VENV := .venv
PY := $(VENV)/bin/python
SPEC ?= specs/quick.yaml
# two pytest-xdist workers: the tests that start or read a study run one after another on one,
# the unit tests on the other (tests/machinegroup.py)
XDIST := -n 2
# mkdocs-material prints a 10-line notice about "MkDocs 2.0" on every build unless this is set
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup study run site test test-all check lint bench clean lock picture

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
	$(PY) -m pytest -q $(XDIST) -m "not slow"

test-all: setup
	$(PY) -m pytest -q $(XDIST)

check: setup lint test-all

lint: setup
	$(VENV)/bin/ruff check bench service tests benchmarks
	$(VENV)/bin/ruff format --check bench service tests benchmarks

bench: setup
	$(PY) benchmarks/run_all.py

# renew constraints.txt (exact versions of every package) from the newest releases pyproject allows
lock:
	@bash scripts/lock.sh

# the README's picture of the article, from the built site (needs chromium)
picture: setup
	$(PY) scripts/readme_picture.py

clean:
	rm -rf site .pytest_cache .ruff_cache

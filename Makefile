# The development loop. `make check` is what CI runs (through the README's test command).
PYTHON ?= python

.PHONY: install check lint format typecheck test test-quick

install:  ## the package, its test tools, and the pinned versions the suite passed with
	sh scripts/install-test-deps.sh

check: lint typecheck test  ## everything CI checks

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format:  ## rewrite the code in the project's format and fix what ruff can
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .

typecheck:
	$(PYTHON) -m mypy

test:
	$(PYTHON) -m pytest

test-quick:  ## no real models: the logic around them, in about half a minute
	$(PYTHON) -m pytest -m "not model"

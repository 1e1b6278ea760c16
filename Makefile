# The two commands: `make drill` (run the DR drills on the embedded stack) and
# `make test` (the whole suite). Both install everything they need first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.chaosrec-installed

.PHONY: setup test drill lint bench clean

setup: $(STAMP)
	$(PY) -m chaosrec setup

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: setup
	$(PY) -m pytest

drill: setup
	$(PY) -m pytest -m drill

lint: setup
	$(VENV)/bin/ruff check chaosrec tests bench
	$(VENV)/bin/ruff format --check chaosrec tests bench
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/bench_stack.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

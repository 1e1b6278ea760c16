# The two commands: `make drill` (run the DR drills on the embedded stack) and
# `make test` (the whole suite). Both install everything they need first.
# `make check` is the inner loop: everything that needs no running process (< 1 min).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.chaosrec-installed

.PHONY: setup test check drill lint bench clean experiments

setup: $(STAMP)
	$(PY) -m chaosrec setup

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: setup lint
	$(PY) -m pytest

# The report is built even when drills fail; the target exits with pytest's status.
# Every run is recorded in the drill history: .chaosrec/history.sqlite, or HISTORY=URL
# (e.g. a team's postgresql://...; also $CHAOSREC_HISTORY).
# The drills of the embedded stack; DRILLS='drill' adds the cluster-scale ones (marker
# kubernetes: a local control plane, ~4.5 min more), which `make test` always runs.
REPORTS ?= reports
HISTORY ?=
DRILLS  ?= drill and not kubernetes
drill: setup
	@rm -rf $(REPORTS)/allure-results; status=0; \
	$(PY) -m pytest -m '$(DRILLS)' --alluredir=$(REPORTS)/allure-results \
		$(if $(HISTORY),--chaosrec-history=$(HISTORY)) || status=$$?; \
	$(PY) -m chaosrec report $(REPORTS)/allure-results --out $(REPORTS)/allure-report \
		|| { [ $$status -ne 0 ] || status=1; }; \
	exit $$status

lint: $(STAMP)
	$(VENV)/bin/ruff check chaosrec tests bench
	$(VENV)/bin/ruff format --check chaosrec tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# No process is started: lint, types, the import-layer contract, the offline tests.
check: lint
	$(PY) -m pytest -q -m "not integration" -n 2 tests/unit

bench: setup
	$(PY) bench/bench_stack.py

# Chaos Toolkit: validate every experiment offline (no update check, no log file).
CHAOS := $(VENV)/bin/chaos --no-version-check --no-log-file
experiments: setup
	@for f in experiments/*.yaml; do $(CHAOS) validate "$$f" || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

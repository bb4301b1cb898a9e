VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install up test lint typecheck pytest smoke e2e bench clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

up: install
	$(VENV)/bin/vmctl up

lint: install
	$(VENV)/bin/ruff check vmctl tests testdata benchmarks
	$(VENV)/bin/mypy

pytest: install
	$(PY) -m pytest

# The installed CLI against real daemons (see docs/cli.md, "Checks").
smoke: install
	VMCTL=$(abspath $(VENV))/bin/vmctl bash ci/smoke.sh

e2e: install
	VMCTL=$(abspath $(VENV))/bin/vmctl bash ci/e2e.sh

test: install lint pytest smoke e2e

# Medians and percentiles of the real components, about a minute (docs/benchmarks.md).
# BENCH_ARGS=--quick for a few seconds, --json for machine-readable output.
bench: install
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

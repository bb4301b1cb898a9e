VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install up test lint typecheck pytest bench clean

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
	$(VENV)/bin/ruff check vmctl tests testdata
	$(VENV)/bin/mypy

pytest: install
	$(PY) -m pytest

test: install lint pytest

clean:
	rm -rf $(VENV) build *.egg-info

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

# The web console's tests drive Debian's Chromium (tests/console); Playwright's own
# browser download is not used. Installed here when missing, as root (CI runs as root).
CHROMIUM ?= /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	else \
		echo "The web console's tests need Chromium at $(CHROMIUM):" \
			"sudo apt-get install chromium (or set CHROMIUM=/path)" >&2; exit 1; \
	fi

pytest: install $(CHROMIUM)
	VMCTL_CHROMIUM=$(CHROMIUM) $(PY) -m pytest

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

# `make demo` and `make test` work on a fresh machine: they set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser pdftools demo test soak lint format bench clean-venv

setup: $(STAMP) browser pdftools

# Dependencies come from the hash-pinned lock (pip refuses any file whose hash differs), then
# watcher itself without touching them. The venv's bundled setuptools is upgraded: 65.5 has a
# known ReDoS (docs/dependency-audit.md).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 'setuptools>=78.1.1'
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# Playwright cannot download its own browser here: use the system Chromium, installing
# Debian's package when we are root, else fall back to Playwright's managed browser.
browser: $(STAMP)
	@if [ -n "$$WATCHER_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 \
	    || command -v chromium-browser >/dev/null 2>&1; then \
	  echo "browser: $${WATCHER_CHROMIUM:-$$(command -v chromium || command -v chromium-browser)}"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "browser: installing Debian's chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "browser: no system Chromium; installing Playwright's"; \
	  $(BIN)/python -m playwright install chromium; \
	fi

# pdftotext (poppler-utils) reads back the report's A4 PDF in tests/test_report.py; without
# it that test is skipped with the reason. Installed when we are root on Debian.
pdftools:
	@if command -v pdftotext >/dev/null 2>&1; then \
	  echo "pdftotext: $$(command -v pdftotext)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "pdftotext: installing Debian's poppler-utils"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; \
	else \
	  echo "pdftotext: not installed (poppler-utils); the report's PDF test will be skipped"; \
	fi

demo: setup
	$(BIN)/watcher demo

test: setup
	$(BIN)/python -m pytest -q -m "not soak"

# The long reliability runs: 50 kill -9 of `watcher run` and 50 of `watcher export`, 50 MB
# pages, a hung Chromium (~15 min on 2 cores).
soak: setup
	$(BIN)/python -m pytest -q -m soak tests/reliability

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark with its baseline; writes benchmarks/RESULTS.md (~30-40 min on 2 cores).
bench: setup
	$(BIN)/python benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)

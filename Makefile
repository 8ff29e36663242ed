# `make demo` and `make test` work on a fresh machine: they set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser fonts replay pdftools demo test soak lint format bench clean-venv

setup: $(STAMP) browser fonts replay pdftools

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

# Screenshots draw the dealers' words only in scripts an installed font covers; Chromium
# draws the rest as empty boxes. Noto covers Latin with Vietnamese, Khmer, Thai, Lao,
# Burmese, Arabic (core), Chinese, Japanese, Korean (cjk) and colour emoji. Installed when
# we are root on Debian/Ubuntu, as for chromium; else said what to install (docs/deploy.md).
FONT_PACKAGES := fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji
fonts: $(STAMP)
	@missing="$$(for p in $(FONT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done)"; \
	if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "fonts: not a Debian system; install Noto fonts for every script (docs/deploy.md, Fonts)"; \
	elif [ -z "$$missing" ]; then \
	  echo "fonts: $(FONT_PACKAGES)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "fonts: installing" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "fonts: missing" $$missing "- screenshots will show empty boxes for those scripts;"; \
	  echo "       run: sudo apt-get install" $$missing; \
	fi

# ReplayWeb.page (AGPL, so fetched, never committed) for the test that replays exported
# archives: `npm pack` gives its prebuilt ui.js and sw.js (`npm install` fails on a
# dependency's version). Cached in .cache/; without npm or the registry the replay test skips.
REPLAY_VERSION := 2.5.3
REPLAY_DIR := .cache/replaywebpage-$(REPLAY_VERSION)

replay: $(REPLAY_DIR)/sw.js

$(REPLAY_DIR)/sw.js:
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "replay: npm not found, so ReplayWeb.page is not fetched and the replay test will skip (Debian: apt-get install -y npm, then make replay)"; \
	else \
	  rm -rf $(REPLAY_DIR).tmp && mkdir -p $(REPLAY_DIR).tmp && \
	  if (cd $(REPLAY_DIR).tmp && npm pack --silent replaywebpage@$(REPLAY_VERSION) >/dev/null && \
	      tar xzf replaywebpage-$(REPLAY_VERSION).tgz package/ui.js package/sw.js package/index.html package/LICENSE); then \
	    rm -rf $(REPLAY_DIR) && mv $(REPLAY_DIR).tmp/package $(REPLAY_DIR) && rm -rf $(REPLAY_DIR).tmp && \
	    echo "replay: ReplayWeb.page $(REPLAY_VERSION) in $(REPLAY_DIR)"; \
	  else \
	    rm -rf $(REPLAY_DIR).tmp; \
	    echo "replay: could not fetch replaywebpage@$(REPLAY_VERSION) from the npm registry (offline?); the replay test will skip until make replay succeeds"; \
	  fi; \
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

# In one process by default. TEST_WORKERS=2 runs two workers (pytest-xdist): most of the suite
# waits on Chromium, subprocesses and sockets, so they take 15.7 min instead of 23 on 2 cores;
# under that load the hung-Chromium test once ran past its 60 s bound (not yet understood).
TEST_WORKERS ?= 0
test: setup
	$(BIN)/python -m pytest -q -m "not soak" -n $(TEST_WORKERS)

# The long runs: 50 kill -9 of `watcher run` and 50 of `watcher export`, 50 MB pages, a hung
# Chromium, and the history machines (browser and Telegram account) over many new random
# histories (~1 h on 2 cores).
soak: setup
	$(BIN)/python -m pytest -q -m soak tests

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

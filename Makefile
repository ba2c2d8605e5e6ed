# Two commands set up a fresh machine: `make demo` (install + the main job on
# the embedded default model) and `make test` (install + the test suite).
PYTHON ?= python

.PHONY: install browser demo test

install:
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e ".[dev]"

# Best effort: Debian's Chromium for the HTML report's browser test (that test
# skips without it). Only as root on Debian, only when missing; never fails.
browser:
	@if [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] && ! command -v chromium >/dev/null 2>&1; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	    || echo "warning: could not install chromium; the browser test will skip" >&2; \
	fi

demo: install
	bash scripts/demo.sh

# lint-imports: the layering contract in pyproject.toml (docs/architecture.md)
test: install browser
	lint-imports
	$(PYTHON) -m pytest -q

# Two commands set up a fresh machine: `make demo` (install + the main job on
# the embedded default model) and `make test` (install + the test suite).
PYTHON ?= python

.PHONY: install demo test

install:
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e ".[dev]"

demo: install
	bash scripts/demo.sh

test: install
	$(PYTHON) -m pytest -q

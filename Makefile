# cnnlab: `make run` sets up and trains the main Fashion-MNIST job; `make test` runs the tests.
# Both start from nothing: they create .venv, install pinned versions (constraints.txt) and
# fetch Fashion-MNIST when it is missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
RECIPE ?= recipes/fashion_mnist.yaml

.PHONY: run test bench install install-dev data test-deps clean help

help:
	@echo "make run     set up and train $(RECIPE) (prints where the report is)"
	@echo "make test    set up with dev extras and run the test suite"
	@echo "make bench   run the benchmarks recorded in docs/BENCHMARKS.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

data: | $(BIN)/python
	@PYTHON=$(BIN)/python bash scripts/get_fashion_mnist.sh

# System packages the tests drive for real (Chromium renders report.html).
test-deps:
	@bash scripts/get_test_deps.sh

run: install data
	$(BIN)/cnnlab train $(RECIPE)

test: install-dev data test-deps
	$(BIN)/python -m pytest

bench: install data
	$(BIN)/cnnlab bench pipeline
	$(BIN)/cnnlab bench models
	$(BIN)/cnnlab scratch bench

clean:
	rm -rf $(VENV) .pytest_cache

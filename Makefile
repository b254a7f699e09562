# cnnlab: `make run` sets up and trains the main Fashion-MNIST job; `make test` runs the tests.
# Both start from nothing: they create .venv, install pinned versions (constraints.txt) and
# fetch Fashion-MNIST when it is missing. The steps are quiet when they work; when one fails it
# shows the command and the end of its output (scripts/lib.sh).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
RECIPE ?= recipes/fashion_mnist.yaml

.PHONY: run test bench install install-dev data test-deps clean help FORCE

help:
	@echo "make run     set up and train $(RECIPE) (prints where the report is)"
	@echo "make test    set up with dev extras and run the test suite"
	@echo "make bench   run the benchmarks recorded in docs/BENCHMARKS.md"

# A venv whose python or pip is missing is half-made (made without Debian's python3-venv, or
# interrupted): then the install steps run again, and scripts/venv.sh makes the venv anew first.
# These are file tests, so they cost nothing when the venv is whole.
VENV_WHOLE := $(and $(realpath $(BIN)/python),$(wildcard $(VENV)/lib/*/site-packages/pip))

$(VENV)/.installed: pyproject.toml constraints.txt $(if $(VENV_WHOLE),,FORCE)
	@bash scripts/venv.sh "$(PYTHON)" "$(VENV)"
	@echo "installing cnnlab into $(VENV) with the versions of constraints.txt..."
	@bash scripts/logged.sh "installing cnnlab into $(VENV)" $(PIP) -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt $(if $(VENV_WHOLE),,FORCE)
	@bash scripts/venv.sh "$(PYTHON)" "$(VENV)"
	@echo "installing cnnlab[dev] into $(VENV) with the versions of constraints.txt..."
	@bash scripts/logged.sh "installing cnnlab[dev] into $(VENV)" $(PIP) -e '.[dev]'
	@touch $(VENV)/.installed $@

FORCE:

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The lookup is cnnlab's own, so cnnlab must be installed first.
data: install
	@PYTHON=$(BIN)/python bash scripts/get_fashion_mnist.sh

# System packages the tests drive for real (Chromium renders report.html; PostgreSQL's server).
test-deps:
	@bash scripts/get_test_deps.sh

run: install data
	$(BIN)/cnnlab train $(RECIPE)

# Without Fashion-MNIST the tests still run and those that need it skip, with the reason. Under
# CI=true the data step fails, the tests that need the data fail, and so does `make test`.
test: install-dev test-deps
	@PYTHON=$(BIN)/python bash scripts/get_fashion_mnist.sh --optional; data=$$?; \
	$(BIN)/python -m pytest && exit $$data

bench: install data
	$(BIN)/cnnlab bench pipeline
	$(BIN)/cnnlab bench models
	$(BIN)/cnnlab bench train
	$(BIN)/cnnlab scratch bench

clean:
	rm -rf $(VENV) .pytest_cache

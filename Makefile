# Two commands from a fresh clone (README "Quick start"):
#   make demo   set up .venv with what the demo needs and run `taskspace demo` on the digits
#   make test   add the test tools (the `dev` extra), lint, and run the whole suite (what CI runs)
# While working: `make test-fast` (the suite without tests marked slow) and `make lint`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint bench setup setup-dev

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

# torch is pinned to the CPU build that this machine's pip serves locally; asking for it first means
# no later requirement can pull the registry's newest (CUDA) build. The demo needs only the
# package's own dependencies: the `dev` extra (pytest, ruff, mypy, Lightning, transformers, Dask,
# the trackers and the notebook runner) comes with `make test`.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/taskspace demo

# ruff check, the formatter's check, codespell, and mypy on geometry/ and store/ against a baseline that only
# shrinks (scripts/mypy_baseline.py).
lint: setup-dev
	$(BIN)/ruff check src tests benchmarks scripts studies
	$(BIN)/ruff format --check src tests benchmarks scripts studies
	$(BIN)/codespell src tests docs benchmarks scripts studies examples README.md CONTRIBUTING.md
	$(BIN)/python scripts/mypy_baseline.py

test: lint
	$(BIN)/python -m pytest -q

# Two pytest-xdist workers (one per core of the machines this project runs on); `make test` stays
# one process, as CI runs it.
test-fast: setup-dev
	$(BIN)/python -m pytest -q -m "not slow" -n 2

bench: setup-dev
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# Two commands from a fresh clone (README "Quick start"):
#   make demo   set up .venv and run `taskspace demo` on the built-in digits
#   make test   set up .venv with the test tools and run ruff + the whole test suite (what CI runs)
# While working: `make test-fast` (the suite without tests marked slow) and `make lint`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint ruff-check bench setup

setup: $(VENV)/.installed

# torch is pinned to the CPU build that this machine's pip serves locally; asking for it first means
# no later requirement can pull the registry's newest (CUDA) build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/taskspace demo

ruff-check: setup
	$(BIN)/ruff check src tests benchmarks scripts

# ruff check, the formatter's check, and mypy on geometry/ and store/ against a baseline that only
# shrinks (scripts/mypy_baseline.py).
lint: ruff-check
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/python scripts/mypy_baseline.py

# `test` depends on ruff check only until the tree is formatted once; then on `lint`.
test: ruff-check
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

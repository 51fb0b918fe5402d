# Entry points that set themselves up: `make demo`, `make test`.
# The venv pins torch to the CPU build through constraints.txt (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/midebias demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Tests on the real data files run when MIDEBIAS_DATA_DIR points at them; skipped otherwise.
# One pytest worker per core (pytest-xdist), one torch thread each (tests/conftest.py).
test: lint
	$(BIN)/python -m pytest -n auto

# The tests not marked slow (pytest -m "not slow"): under a minute; `make test` runs all.
test-fast: lint
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

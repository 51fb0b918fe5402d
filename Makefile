# Entry points that set themselves up: `make demo`, `make test`.
# The venv pins torch to the CPU build through constraints.txt (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_DATA := $(abspath ../shared/data)

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

# MIDEBIAS_DATA_DIR: yours if set, else ../shared/data when it exists (tests on the real
# files are skipped without it).
test: lint
	MIDEBIAS_DATA_DIR="$${MIDEBIAS_DATA_DIR:-$$( [ -d $(SHARED_DATA) ] && echo $(SHARED_DATA) )}" \
		$(BIN)/python -m pytest

# The tests not marked slow (pytest -m "not slow"): under a minute; `make test` runs all.
test-fast: lint
	MIDEBIAS_DATA_DIR="$${MIDEBIAS_DATA_DIR:-$$( [ -d $(SHARED_DATA) ] && echo $(SHARED_DATA) )}" \
		$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

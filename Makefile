# asyncfc developer commands. Only Python (>= 3.10) and pip are needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint typecheck unit test-llm demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps bfcl-eval==2026.3.23 mpmath==1.3.0
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest

test: lint typecheck unit

test-llm: setup
	$(BIN)/pytest -m llm -o addopts="-q --strict-markers" --timeout=1800

demo: setup
	$(BIN)/asyncfc demo

bench: setup
	$(BIN)/asyncfc bench synthetic

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

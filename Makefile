# asyncfc developer commands. Only Python (>= 3.10) and pip are needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint typecheck imports docs unit test-llm demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml bench/pyproject.toml requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e . -e ./bench -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps bfcl-eval==2026.3.23 mpmath==1.3.0
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check src bench/src tests examples docs
	$(BIN)/ruff format --check src bench/src tests examples docs

imports: setup
	$(BIN)/lint-imports

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir .site

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest

test: lint typecheck imports docs unit

test-llm: setup
	$(BIN)/pytest -m llm -o addopts="-q --strict-markers" --timeout=1800

demo: setup
	$(BIN)/asyncfc demo

bench: setup
	$(BIN)/asyncfc bench synthetic

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .site

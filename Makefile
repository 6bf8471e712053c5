# The two commands of the README: `make demo` and `make test`. Each builds its own virtual
# environment (.venv) from pyproject.toml the first time, so a fresh machine needs only Python.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# Execute notebooks/quickstart.ipynb headless (against the local emulator unless
# ANTHROPIC_API_KEY is set) and leave build/quickstart.ipynb and build/quickstart.html.
demo: $(STAMP)
	$(BIN)/python notebooks/run.py notebooks/quickstart.ipynb --out build

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Lint, type-check, then every test (unit, emulator, notebooks under nbval) with coverage.
test: lint
	$(BIN)/python -m pytest tests notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg \
		--cov --cov-report=term

bench: $(STAMP)
	$(BIN)/python benchmarks/import_time.py
	$(BIN)/python benchmarks/stream.py

clean:
	rm -rf $(VENV) build .coverage .pytest_cache .mypy_cache .ruff_cache

# The two commands of the README: `make demo` and `make test`. Each builds its own virtual
# environment (.venv) from pyproject.toml the first time, so a fresh machine needs only Python.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint browser-deps bench clean

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
	$(BIN)/lint-imports

# Debian's Chromium and a font for tests/browser: never `playwright install`, which downloads a
# browser of its own. Instant when both are there; where apt-get cannot run (not root, not
# Debian) it says so in one line, and the browser tests skip with one line saying why.
CHROMIUM := /usr/lib/chromium/chromium
DEJAVU   := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

browser-deps:
	@if [ -x $(CHROMIUM) ] && [ -f $(DEJAVU) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "browser-deps: installing chromium and fonts-dejavu-core with apt-get"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium fonts-dejavu-core >/dev/null; } \
		|| echo "browser-deps: apt-get could not install chromium: browser tests will skip"; \
	else \
		echo "browser-deps: no chromium and apt-get needs root here: browser tests will skip"; \
	fi

# Lint, type-check, then every test (unit, emulator, browser, notebooks under nbval) with
# coverage. --cov names its source: nbval copies it into each notebook kernel, and a bare --cov
# (pytest-cov 7 passes source=[True]) makes the kernel die before the first cell. Two workers,
# each taking a whole file at a time (a notebook's cells run in order in one kernel; a file's
# emulator and browser fixtures are started once): most tests wait on sockets, not the CPU.
test: lint browser-deps
	$(BIN)/python -m pytest tests notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg \
		-n 2 --dist loadfile --cov=claude_magics --cov-report=term

bench: $(STAMP)
	$(BIN)/python benchmarks/import_time.py
	$(BIN)/python benchmarks/stream.py
	$(BIN)/python benchmarks/load_ext.py
	$(BIN)/python benchmarks/widget_stream.py
	$(BIN)/python benchmarks/batch_build.py
	$(BIN)/python benchmarks/batch_parse.py
	$(BIN)/python benchmarks/realtime_fanout.py
	$(BIN)/python benchmarks/labeling_cost.py

clean:
	rm -rf $(VENV) build .coverage .pytest_cache .mypy_cache .ruff_cache

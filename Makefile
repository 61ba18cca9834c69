# The two set-up commands (see README): `make run` and `make test`.
# Both create or reuse the project's virtual environment in .venv and install what they need.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNELS := $(VENV)/.kernels
DEMO_CYCLE := $(VENV)/.demo-cycle

.PHONY: run test lint system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# numba compiles the vision kernels into its cache beside their sources: once here, after
# an install or a change to them, rather than in the first frames of a run or a test
$(KERNELS): $(STAMP) vision/skin.py vision/defects.py
	$(BIN)/python -c 'from vision.pipeline import load_kernels; load_kernels()'
	touch $(KERNELS)

# the demo's simulated camera plays a cycle of frames rendered once and cached (under
# ~/.cache/gradeline); render it here rather than on the demo's first start
$(DEMO_CYCLE): $(STAMP) simulators/scene.py simulators/fruit.py
	$(BIN)/gradeline sim line --prerender-only
	touch $(DEMO_CYCLE)

run: $(KERNELS) $(DEMO_CYCLE)
	$(BIN)/gradeline run $(ARGS)

system-deps:
	scripts/install-system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Two workers (pytest-xdist), one per core; a test file stays on one worker, so a module's
# line or browser is started once. `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2

test: $(KERNELS) $(DEMO_CYCLE) system-deps lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

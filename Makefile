# The two set-up commands (see README): `make run` and `make test`.
# Both create or reuse the project's virtual environment in .venv and install what they need.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNELS := $(VENV)/.kernels

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

run: $(KERNELS)
	$(BIN)/gradeline run $(ARGS)

system-deps:
	scripts/install-system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(KERNELS) system-deps lint
	$(BIN)/pytest -q $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

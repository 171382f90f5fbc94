# The two set-up commands of README.md: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
LS_VENV ?= .lsvenv
BIN := $(VENV)/bin
STORE ?= .demo/datasets

.PHONY: demo test lint install install-dev label-studio clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Base install: curation only, never torch.
install: $(BIN)/python
	$(BIN)/python -m pip install -q .

# Everything the tests need; torch is pinned to the CPU build first (see ../shared/STACK.md).
install-dev: $(BIN)/python
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[all,dev]"

# Label Studio clashes with the project's pins, so it gets a venv of its own.
label-studio: $(LS_VENV)/bin/label-studio
$(LS_VENV)/bin/label-studio:
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q label-studio

demo: install
	MEDCURATE_STORE=$(STORE) bash examples/demo.sh $(BIN)

# ruff and mypy (configured in pyproject.toml) over medcurate/, tests/ and benchmarks/; mypy
# checks against the real libraries, so it needs the full install.
lint: install-dev
	$(BIN)/ruff check medcurate tests benchmarks
	$(BIN)/mypy

# the README's test command: lint first, then the suite
test: lint label-studio
	MEDCURATE_LABEL_STUDIO_BIN=$(abspath $(LS_VENV))/bin/label-studio $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(LS_VENV) .demo build *.egg-info

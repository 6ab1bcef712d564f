# Set-up and the two entry points of README.md.  `make prove` and `make test` create .venv on first
# use (installing the local CPU wheel of torch first where this machine has one), then run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: prove test bench setup
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# torch 2.13.0 is a local CPU wheel on the project's machines; elsewhere the range in pyproject applies.
	$(BIN)/pip install -q torch==2.13.0 || echo "make: no local torch 2.13.0 wheel; pip will resolve torch from pyproject.toml"
	$(BIN)/pip install -q -e '.[test]'
	touch $@

prove: $(VENV)/.installed
	$(BIN)/nonid prove

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 -q

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks

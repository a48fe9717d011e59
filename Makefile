# Two commands on a fresh machine (Python 3.10+, no GPU needed):
#   make run    the main job: generate the default ResNet-18 position set into positions/
#   make test   type-check and run the test suite
# Both create the virtual environment in $(VENV) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
POSITIONS := positions/resnet18_retinotopic_init

.PHONY: help run test bench env clean

help:
	@echo "make run    generate the default ResNet-18 position set ($(POSITIONS))"
	@echo "make test   type-check and run the tests"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make env    only build the virtual environment ($(VENV))"

env: $(STAMP)

$(STAMP): setup.py pyproject.toml requirements/constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10+ is needed, found " + sys.version)'
	$(PYTHON) -m venv $(VENV)
	$(PIP) -c requirements/constraints.txt -e ".[test]"
	@# vissl and classy-vision pin Python-3.8-era packages: install them without their
	@# dependencies (setup.py declares what they need); classy-vision after vissl, whose
	@# wheel bundles an older copy of classy_vision
	$(PIP) --no-deps vissl==0.1.6
	$(PIP) --no-deps classy-vision==0.7.0
	touch $(STAMP)

run: $(POSITIONS)/version.txt
	@echo "position set: $(POSITIONS)"

$(POSITIONS)/version.txt: | $(STAMP)
	$(BIN)/python scripts/save_retinotopic_positions.py --arch resnet18 --out $(POSITIONS)

test: $(STAMP)
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_positions.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache

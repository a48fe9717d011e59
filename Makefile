# Two commands on a fresh machine (Python 3.10+, no GPU needed):
#   make run    the main job: train the embedded default, a TDANN ResNet-18 (SimCLR + spatial
#               loss) on CPU for a few minutes, making its position set and image set first
#   make test   lint, type-check and run the whole test suite (make test-fast: without the slow tier)
# Both create the virtual environment in $(VENV) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
POSITIONS := positions/resnet18_retinotopic_init
DEMO_IMAGES := data/demo_images
DEMO_CONFIG := demo_cpu_simclr_spatial_resnet18

.PHONY: help run v1-figure swapopt-demo positions test test-fast bench env clean

help:
	@echo "make run        train the embedded default ($(DEMO_CONFIG)) on CPU"
	@echo "make v1-figure  orientation map, smoothness and pinwheels of the model make run trained"
	@echo "make swapopt-demo  the swapopt pipeline on CPU: alpha = 0 model, swapopt, TDANN on the result, V1 figure"
	@echo "make positions  only generate the default ResNet-18 position set ($(POSITIONS))"
	@echo "make test       lint, type-check and run every test (what CI runs)"
	@echo "make test-fast  the same without the slow tier (real train.py runs, the notebook)"
	@echo "make bench      run the benchmarks in bench/"
	@echo "make env        only build the virtual environment ($(VENV))"

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
	@# imagecorruptions asks for opencv-python, the GUI build; setup.py installs the headless one
	$(PIP) --no-deps imagecorruptions==1.1.2
	@# torchattacks pins requests~=2.25 (2021), which it never imports
	$(PIP) --no-deps torchattacks==3.5.1
	touch $(STAMP)

run: $(POSITIONS)/version.txt $(DEMO_IMAGES)/train
	$(BIN)/python train.py config=$(DEMO_CONFIG)

DEMO_CHECKPOINT := checkpoints/$(DEMO_CONFIG)/model_final_checkpoint_phase2.torch

$(DEMO_CHECKPOINT):
	$(MAKE) run

v1-figure: $(DEMO_CHECKPOINT) | $(STAMP)
	$(BIN)/python scripts/v1_figure.py --checkpoint $(DEMO_CHECKPOINT) --positions $(POSITIONS) --out figures/v1_demo.png

# the swapopt pipeline on the demo data: an alpha = 0 model -> its responses to the gratings ->
# swapopt (SWAP_ATTEMPTS per layer) -> the TDANN trained on the swapped positions -> V1 figure
SWAP_ATTEMPTS ?= 5e6
ALPHA0_DIR := checkpoints/demo_alpha0
SWAPPED := positions/resnet18_swapopt_demo
SWAPPED_DIR := checkpoints/demo_swapopt

swapopt-demo: $(POSITIONS)/version.txt $(DEMO_IMAGES)/train
	$(BIN)/python train.py config=$(DEMO_CONFIG) --alpha 0 config.CHECKPOINT.DIR=$(ALPHA0_DIR)
	$(BIN)/python scripts/swapopt.py --checkpoint $(ALPHA0_DIR)/model_final_checkpoint_phase2.torch \
		--positions $(POSITIONS) --out $(SWAPPED) --attempts $(SWAP_ATTEMPTS) --overwrite \
		--figure figures/swapopt_demo_layer2.0.png
	$(BIN)/python train.py config=$(DEMO_CONFIG) config.MODEL.TRUNK.TRUNK_PARAMS.position_dir=$(SWAPPED) \
		config.CHECKPOINT.DIR=$(SWAPPED_DIR)
	$(BIN)/python scripts/v1_figure.py --checkpoint $(SWAPPED_DIR)/model_final_checkpoint_phase2.torch \
		--positions $(SWAPPED) --out figures/v1_swapopt_demo.png

positions: $(POSITIONS)/version.txt

$(POSITIONS)/version.txt: | $(STAMP)
	$(BIN)/python scripts/save_retinotopic_positions.py --arch resnet18 --out $(POSITIONS)

$(DEMO_IMAGES)/train: | $(STAMP)
	$(BIN)/python scripts/make_demo_dataset.py --out $(DEMO_IMAGES)

test: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/bench_positions.py
	$(BIN)/python bench/bench_train_step.py
	$(BIN)/python bench/bench_swapopt.py
	$(BIN)/python bench/bench_end_to_end.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache

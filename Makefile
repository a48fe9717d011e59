# Two commands on a fresh machine (Python 3.10+, no GPU needed):
#   make run    the main job: train the embedded default, a TDANN ResNet-18 that forms a layer2
#               orientation map on CPU in about 11 minutes (positions, images and swapopt first)
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

.PHONY: help run run-simclr v1-figure simclr-v1-figure map-comparison simclr-map-comparison methods-comparison positions test test-fast docs bench gpu-wheels env clean

help:
	@echo "make run        the map demo on CPU (~11 min): alpha = 0 model, swapopt, the TDANN ($(MAP_CONFIG))"
	@echo "make v1-figure  orientation map, smoothness and pinwheels of the model make run trained"
	@echo "make map-comparison  alpha 0 vs 5 vs 15 over seeds, on swapopt and retinotopic positions (~65 min)"
	@echo "make methods-comparison  TDANN, TopoLoss, lateral, local sheets and the SOM, 2 seeds, on one bench"
	@echo "make run-simclr the self-supervised map demo on CPU (~35 min): SimCLR alpha = 0 model, swapopt, the SimCLR TDANN ($(SIMCLR_CONFIG))"
	@echo "make simclr-v1-figure  orientation map, smoothness and pinwheels of the model make run-simclr trained"
	@echo "make simclr-map-comparison  SimCLR alpha 0 vs 5 over 3 seeds: layer2.0 maps and layer4.1 category patches (~100 min)"
	@echo "make positions  only generate the default ResNet-18 position set ($(POSITIONS))"
	@echo "make test       lint, type-check and run every test (what CI runs)"
	@echo "make test-fast  the same without the slow tier (real train.py runs, the notebook) and the docs"
	@echo "make docs       build the documentation site into site/ (MkDocs, --strict: a broken link fails)"
	@echo "make bench      run the benchmarks in bench/"
	@echo "make gpu-wheels the wheels bench/gpu_check.py installs on a GPU machine (.whl/)"
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

# make run: the map demo. An alpha = 0 model (seed 100) -> swapopt of its layer2 positions on
# its grating responses -> the TDANN (alpha 15 on layer2.0 and layer2.1) trained from scratch
# (seed 0) on the swapped positions. About 11 minutes on 2 cores; docs/maps.md has the comparison
# with alpha = 0 over seeds (make map-comparison).
MAP_CONFIG := demo_cpu_supervised_spatial_resnet18
MAP_FINAL := model_final_checkpoint_phase16.torch
POSITIONS_112 := positions/resnet18_112px_retinotopic_init
SWAPPED_112 := positions/resnet18_112px_swapopt
MAP_GRATINGS := --image-size 112 --spatial-frequencies 5 8 12 16 24 32 44
PRETRAINED := checkpoints/$(MAP_CONFIG)_alpha0_seed100/$(MAP_FINAL)
DEMO_CHECKPOINT := checkpoints/$(MAP_CONFIG)/$(MAP_FINAL)
SWAP_ATTEMPTS ?= 5e6

run: $(SWAPPED_112)/version.txt $(DEMO_IMAGES)/train
	$(BIN)/python train.py config=$(MAP_CONFIG)

$(DEMO_CHECKPOINT):
	$(MAKE) run

v1-figure: $(DEMO_CHECKPOINT) | $(STAMP)
	$(BIN)/spacetorch v1-figure --checkpoint $(DEMO_CHECKPOINT) --positions $(SWAPPED_112) $(MAP_GRATINGS) \
		--out figures/v1_demo.png

$(POSITIONS_112)/version.txt: | $(STAMP)
	$(BIN)/spacetorch positions --arch resnet18 --input-size 112 --out $(POSITIONS_112)

$(PRETRAINED): $(POSITIONS_112)/version.txt $(DEMO_IMAGES)/train
	$(BIN)/python train.py config=$(MAP_CONFIG) --alpha 0 config.SEED_VALUE=100 \
		config.MODEL.TRUNK.TRUNK_PARAMS.position_dir=$(POSITIONS_112) config.CHECKPOINT.DIR=$(dir $(PRETRAINED))

$(SWAPPED_112)/version.txt: $(PRETRAINED)
	$(BIN)/spacetorch swapopt --checkpoint $(PRETRAINED) --positions $(POSITIONS_112) --layers layer2.0 layer2.1 \
		--attempts $(SWAP_ATTEMPTS) $(MAP_GRATINGS) --out $(SWAPPED_112) --overwrite --figure figures/swapopt_demo_layer2.0.png

# the documented comparison (docs/maps.md): alpha 0 vs 5 vs 15 (layer2 only), seeds 0-2, on the
# swapped positions, then alpha 0 vs 15 on the retinotopic ones (seeds 0-1); about 65 minutes on 2 cores
map-comparison: $(SWAPPED_112)/version.txt $(DEMO_IMAGES)/train
	$(BIN)/spacetorch compare-alpha --config $(MAP_CONFIG) --positions $(SWAPPED_112) --alphas 5 15 \
		--alpha-layers layer2_0,layer2_1 --seeds 0 1 2 $(MAP_GRATINGS) --out comparisons/map_demo_swapopt
	$(BIN)/spacetorch compare-alpha --config $(MAP_CONFIG) --positions $(POSITIONS_112) --alphas 15 \
		--alpha-layers layer2_0,layer2_1 --seeds 0 1 $(MAP_GRATINGS) --out comparisons/map_demo_retinotopic

# the documented methods comparison (docs/methods.md): none, TDANN, TopoLoss, lateral connections and
# locally connected sheets on layer2, seeds 0-1, 8 epochs each, and the V1 SOM
methods-comparison: $(SWAPPED_112)/version.txt $(DEMO_IMAGES)/train
	$(BIN)/spacetorch compare-methods --config $(MAP_CONFIG) --positions $(SWAPPED_112) \
		--methods none tdann=15 topoloss=5 lateral=0.5 local=5 --layers layer2.0,layer2.1 --seeds 0 1 $(MAP_GRATINGS) \
		--override config.OPTIMIZER.num_epochs=8 --som --out comparisons/methods_demo

# make run-simclr: the self-supervised map demo, the same protocol as make run with the headline
# objective. A SimCLR alpha = 0 model (seed 100) -> swapopt of its layer2 and layer4 positions on
# its grating responses -> the SimCLR TDANN (alpha 5 on layer2.0, 2.1, 4.0, 4.1) trained from
# scratch (seed 0) on the swapped positions; every view a random resized crop of a whole
# photograph (data/demo_photos). docs/maps.md has the comparison over seeds.
SIMCLR_CONFIG := demo_cpu_simclr_map_resnet18
SIMCLR_FINAL := model_final_checkpoint_phase19.torch
DEMO_PHOTOS := data/demo_photos
SIMCLR_SWAPPED := positions/resnet18_112px_simclr_swapopt
SIMCLR_SOURCE := checkpoints/$(SIMCLR_CONFIG)_alpha0_seed100/$(SIMCLR_FINAL)
SIMCLR_CHECKPOINT := checkpoints/$(SIMCLR_CONFIG)/$(SIMCLR_FINAL)
SIMCLR_LAYERS := layer2.0 layer2.1 layer4.0 layer4.1

run-simclr: $(SIMCLR_SWAPPED)/version.txt $(DEMO_PHOTOS)/train
	$(BIN)/spacetorch train config=$(SIMCLR_CONFIG)

$(SIMCLR_CHECKPOINT):
	$(MAKE) run-simclr

simclr-v1-figure: $(SIMCLR_CHECKPOINT) | $(STAMP)
	$(BIN)/spacetorch v1-figure --checkpoint $(SIMCLR_CHECKPOINT) --positions $(SIMCLR_SWAPPED) $(MAP_GRATINGS) \
		--out figures/v1_simclr_demo.png

$(DEMO_PHOTOS)/train: | $(STAMP)
	$(BIN)/spacetorch demo-data --whole --n-train 384 --n-val 240 --out $(DEMO_PHOTOS)

$(SIMCLR_SOURCE): $(POSITIONS_112)/version.txt $(DEMO_PHOTOS)/train
	$(BIN)/spacetorch train config=$(SIMCLR_CONFIG) --alpha 0 config.SEED_VALUE=100 \
		config.MODEL.TRUNK.TRUNK_PARAMS.position_dir=$(POSITIONS_112) config.CHECKPOINT.DIR=$(dir $(SIMCLR_SOURCE))

$(SIMCLR_SWAPPED)/version.txt: $(SIMCLR_SOURCE)
	$(BIN)/spacetorch swapopt --checkpoint $(SIMCLR_SOURCE) --positions $(POSITIONS_112) --layers $(SIMCLR_LAYERS) \
		--attempts $(SWAP_ATTEMPTS) $(MAP_GRATINGS) --out $(SIMCLR_SWAPPED) --overwrite --figure figures/swapopt_simclr_demo_layer2.0.png

# the documented self-supervised comparison (docs/maps.md): SimCLR alpha 0 vs 5 (layer2 and layer4),
# seeds 0-2, on the swapped positions; layer2.0's orientation map and layer4.1's category patches
# on 240 held-out crops of the 12 photographs (one category each)
simclr-map-comparison: $(SIMCLR_SWAPPED)/version.txt $(DEMO_PHOTOS)/train
	$(BIN)/spacetorch compare-alpha --config $(SIMCLR_CONFIG) --positions $(SIMCLR_SWAPPED) --alphas 5 \
		--alpha-layers layer2_0,layer2_1,layer4_0,layer4_1 --seeds 0 1 2 $(MAP_GRATINGS) \
		--categories $(DEMO_PHOTOS)/val --category-layer layer4.1 --out comparisons/simclr_map

positions: $(POSITIONS)/version.txt

$(POSITIONS)/version.txt: | $(STAMP)
	$(BIN)/spacetorch positions --arch resnet18 --out $(POSITIONS)

$(DEMO_IMAGES)/train: | $(STAMP)
	$(BIN)/spacetorch demo-data --out $(DEMO_IMAGES)

test: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy
	$(MAKE) docs
	$(BIN)/python -m pytest -m ""

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --quiet

test-fast: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

# the packages a GPU machine with its own torch lacks, as wheels in .whl/, for bench/gpu_check.py
# --wheels .whl there (pure-Python packages: built here, they install on any Python 3.10+)
GPU_WHEELS := vissl==0.1.6 classy-vision==0.7.0 imagecorruptions==1.1.2 torchattacks==3.5.1 fvcore iopath \
	hydra-core omegaconf antlr4-python3-runtime yacs termcolor grad-cam ttach setuptools minisom submitit cloudpickle
# compiled packages the GPU machine lacks, as binary wheels for its Python (x86_64 Linux)
GPU_BINARY_WHEELS := h5py scikit-learn joblib threadpoolctl
GPU_PYTHON ?= 3.12
WHEEL_DIR ?= .whl

gpu-wheels: | $(STAMP)
	rm -rf $(WHEEL_DIR).partial
	$(BIN)/python -m pip wheel -q --disable-pip-version-check --no-deps -c requirements/constraints.txt \
		-w $(WHEEL_DIR).partial $(GPU_WHEELS)
	$(BIN)/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
		--python-version $(GPU_PYTHON) --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		-c requirements/constraints.txt -d $(WHEEL_DIR).partial $(GPU_BINARY_WHEELS)
	rm -rf $(WHEEL_DIR) && mv $(WHEEL_DIR).partial $(WHEEL_DIR)
	@echo "wrote $(WHEEL_DIR)/ ($$(ls $(WHEEL_DIR) | wc -l) wheels); on the GPU machine: python bench/gpu_check.py --wheels $(WHEEL_DIR) --out gpu_results"

bench: $(STAMP)
	$(BIN)/python bench/bench_positions.py
	$(BIN)/python bench/bench_train_step.py
	$(BIN)/python bench/bench_swapopt.py
	$(BIN)/python bench/bench_end_to_end.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache site

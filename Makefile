# Two commands on a fresh machine with Python 3.11:  `make demo`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench pretrained clean

install: $(VENV)/.installed

# torch first, pinned to the CPU build: a bare `torch` requirement would otherwise pull CUDA wheels
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps molsets  # MOSES SMILES only: its declared dependencies do not build
	touch $@

demo: install
	$(BIN)/graphium-ray make-data quickstart
	$(BIN)/graphium-ray train sweeps/quickstart.yaml

test: install
	$(BIN)/python -m pytest -q -ra --durations=15

lint: install
	$(BIN)/ruff check graphium_ray tests platform

bench: install
	$(BIN)/python platform/bench/featurize_bench.py

# The shipped model builtin:graphium-ray-moses-qm9 (docs/pretrained/): offline data, the narrow µP
# sweep, the wide training, then the selected checkpoint copied into the package (~30 min, 2 cores).
PRETRAINED := graphium_ray/pretrained/graphium-ray-moses-qm9
pretrained: install
	$(BIN)/graphium-ray make-data pretrain --molecules 20000 --output data/generated/pretrain_sweep
	$(BIN)/graphium-ray sweep sweeps/pretrain_offline_sweep.yaml --output runs/sweeps/pretrain_offline_lr
	$(BIN)/graphium-ray make-data pretrain --molecules 100000 --output data/generated/pretrain
	$(BIN)/graphium-ray train sweeps/pretrain_offline.yaml --from-sweep runs/sweeps/pretrain_offline_lr \
		--output runs/pretrain_offline
	rm -rf $(PRETRAINED) && mkdir -p $(PRETRAINED)
	cp $(addprefix runs/pretrain_offline/checkpoint/,model.pt config.yaml data.json state.json mup_base_shapes.json) $(PRETRAINED)/

clean:
	rm -rf .graphium_ray_cache runs data/generated

# Two commands on a fresh machine with Python 3.11:  `make demo`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

# torch first, pinned to the CPU build: a bare `torch` requirement would otherwise pull CUDA wheels
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
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

clean:
	rm -rf .graphium_ray_cache runs data/generated

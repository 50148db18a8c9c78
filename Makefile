# `make demo` and `make test` do all set-up themselves and reuse what is already there.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# CI runs the tests on 2 cores; pytest-xdist spreads the suite over them.
TEST_WORKERS ?= 2

.PHONY: demo test test-long lint bench gpu-check stockfish setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch: the CPU build (torch==2.13.0, from the local wheel) unless an NVIDIA GPU is present.
$(STAMP): pyproject.toml | $(BIN)/python
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		$(BIN)/pip install -q torch; \
	else \
		$(BIN)/pip install -q torch==2.13.0; \
	fi
	$(BIN)/pip install -q -e '.[test,analysis]'
	@touch $(STAMP)

setup: $(STAMP)

stockfish:
	@bash scripts/ensure_stockfish.sh

demo: setup stockfish
	$(BIN)/transcendence demo

test: setup stockfish
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not long"

# The checks kept out of `make test` (marked `long`): kill-and-resume, DDP, the 4,000-draw sampler test, ...
test-long: setup stockfish
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -m long

# The lint gates of .ci/run: ruff, mypy (the paths in [tool.mypy]), the import-layer contract.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python scripts/check_layers.py

bench: setup
	$(BIN)/python benchmarks/core.py

# The GPU training path (paper_50m, bf16 + torch.compile vs float32): needs CUDA, exits 2 without it.
gpu-check: setup
	bash scripts/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Two commands for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools

# torch/torchvision/open-clip-torch go in one pip command with the lock file as
# constraints (torch 2.14.1 + torchvision 0.29.1 work together on CPU and GPU).
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m curation.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check curation filters shards trainer_bridge tests bench

# img2dataset 1.47 pins webdataset<0.3 and pandas<3, so the peer gets its own venv.
PEER := $(HOME)/.cache/vlm-curation/img2dataset-venv
$(PEER)/bin/img2dataset:
	$(PY) -m venv $(PEER)
	$(PEER)/bin/pip install --quiet img2dataset==1.47.0

bench: $(STAMP) $(PEER)/bin/img2dataset
	$(BIN)/python bench/download.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/clip.py
	$(BIN)/python bench/bridge.py
	$(BIN)/python bench/inspect_stats.py

clean:
	rm -rf demo_output .pytest_cache

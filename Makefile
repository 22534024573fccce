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

bench: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt '.[bench]' || true
	$(BIN)/python bench/run_all.py

clean:
	rm -rf demo_output .pytest_cache

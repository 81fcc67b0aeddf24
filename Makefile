# One place for every install step: `make run`, `make test`, CI (.ci/run) and docker/Dockerfile use it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchaudio are pinned here (not in pyproject) so users elsewhere may pick their own build.
TORCH_PACKAGES ?= torch==2.14.1 torchaudio==2.11.0
STAMP := $(VENV)/.installed
CONFIG ?= conf/ravdess.yaml
RAVDESS ?= $(firstword $(wildcard ../shared/data/ravdess) data/ravdess)
PYTEST_ARGS ?=
# torch threads of `make run`: with one, the same seed gives the same numbers on the same machine
# (and a 2-core machine shared with another job runs many times faster than with two).
RUN_THREADS ?= 1

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PACKAGES)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@test -d $(RAVDESS) || test "$(origin RAVDESS)" = "file" || { echo "RAVDESS=$(RAVDESS): no such folder" >&2; exit 1; }
	@test -d $(RAVDESS) || $(BIN)/lightning-ser download ravdess $(RAVDESS)
	OMP_NUM_THREADS=$(RUN_THREADS) $(BIN)/lightning fit -c $(CONFIG) --data.root $(RAVDESS)
	OMP_NUM_THREADS=$(RUN_THREADS) $(BIN)/lightning test -c $(CONFIG) --data.root $(RAVDESS) --ckpt_path best

test: $(STAMP)
	WANDB_MODE=disabled $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

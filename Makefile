# `make run` and `make test` work on a fresh machine: they create .venv when it is missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKERS ?= 2

.PHONY: run test test-all lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/cnn-jax reproduce experiments/digits.py --workdir runs/digits

test: lint
	$(BIN)/python -m pytest -n $(WORKERS) -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .

test-all: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) -q -m ''

bench: $(STAMP)
	$(BIN)/cnn-jax bench resnet50 --batch-size 16

clean:
	rm -rf runs .pytest_cache

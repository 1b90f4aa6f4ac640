# evo1_ros — entry points (DESIGN.md §8). Everything runs inside .venv, created by `make setup`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint bench demo compat clean

setup:
	@VENV=$(VENV) bash scripts/setup.sh

test: setup
	@bash scripts/test.sh $(PYTEST_ARGS)

lint: setup
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

demo:
	@echo "make demo: not built yet — the simulation demo (MuJoCo scene + policy) is a later issue." >&2; exit 2

clean:
	rm -rf build $(VENV)

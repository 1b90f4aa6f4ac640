# evo1_ros — entry points (DESIGN.md §8). Everything runs inside .venv, created by `make setup`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint bench demo colcon clean

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

# Manual check that both packages build as a colcon workspace (what a ROS 2 user does), against
# the venv's ROS wheels; installs colcon into .venv on first use. Output in build/colcon_ws.
colcon: setup
	@$(PY) -m pip -q install colcon-common-extensions
	@rm -rf build/colcon_ws && mkdir -p build/colcon_ws/src && git ls-files -z | \
	  xargs -0 -I{} cp --parents {} build/colcon_ws/src/ 2>/dev/null; \
	cd build/colcon_ws && PATH=$(CURDIR)/$(VENV)/bin:$$PATH CMAKE_PREFIX_PATH=$(CURDIR)/$(VENV) \
	  AMENT_PREFIX_PATH=$(CURDIR)/$(VENV) colcon build --base-paths src src/evo1_msgs \
	  --cmake-args -DPython3_EXECUTABLE=$(CURDIR)/$(VENV)/bin/python -DBUILD_TESTING=OFF && \
	  ls install/evo1_ros/lib/evo1_ros install/evo1_ros/share/evo1_ros/config/launch

clean:
	rm -rf build $(VENV)

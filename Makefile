# evo1_ros — entry points (docs/architecture.md §8). Everything runs inside .venv, created by `make setup`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test test-explore lint bench demo colcon compat clean

setup:
	@VENV=$(VENV) bash scripts/setup.sh

test: setup
	@bash scripts/test.sh $(PYTEST_ARGS)

# Property tests with fresh random examples (`make test` replays a fixed set, so CI is repeatable),
# plus any test marked slow.
test-explore: setup
	@HYPOTHESIS_PROFILE=explore bash scripts/test.sh -m '' $(PYTEST_ARGS)

lint: setup
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The end-to-end simulation demo (config/demo.yaml): expert demos recorded in MuJoCo -> evo1 train ->
# closed-loop evo1 eval sim -> summary. DEMO_CHECKPOINT=DIR skips recording and training.
demo: setup
	@$(VENV)/bin/evo1 demo

# External check against LeRobot itself (offline, CPU): lerobot 0.3.3 loads our v2.1 datasets, its
# writer produces the same files, lerobot 0.4.4 converts them to v3.0 and loads them. Builds
# .venv-compat-033 / .venv-compat-04x on first use (~4 min, 3 GB); not part of `make test`.
# COMPAT_QUICK=1 skips the 1001-episode dataset.
compat: setup
	@bash scripts/compat.sh

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
	rm -rf build $(VENV) .venv-compat-033 .venv-compat-04x

"""The suite's root conftest: registers the fixtures plugin package (tests/fixtures/), sets up headless
MuJoCo and loads the hypothesis profile.

Shared fixtures and rigs (per-test ROS isolation, the loopback arm and driver, policy checkpoints)
live in tests/fixtures/; fixtures local to one folder stay in that folder's conftest.py.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Helpers imported by tests from tests/fixtures/ get pytest's assertion messages too.
pytest.register_assert_rewrite("fixtures")

# Headless MuJoCo rendering through EGL (Mesa llvmpipe, no display, nothing to install): MUJOCO_GL must
# be set before the first `import mujoco` in the process, hence here at collection time
# (before the plugins and any test module are imported).
os.environ.setdefault("MUJOCO_GL", "egl")

pytest_plugins = ["fixtures.ros", "fixtures.xarm", "fixtures.policy"]

# Property tests: the default run ("ci") draws the same examples every time, so CI cannot fail on a
# case nobody saw before; HYPOTHESIS_PROFILE=explore searches new random examples (make test-explore).
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

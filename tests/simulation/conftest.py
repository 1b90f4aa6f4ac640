"""Simulation tests: headless MuJoCo rendering through EGL (Mesa llvmpipe, no display, nothing to install).

MUJOCO_GL must be set before the first `import mujoco` in the process, hence here at collection time.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

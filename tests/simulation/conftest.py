"""Simulation tests: headless MuJoCo rendering through EGL (Mesa llvmpipe, no display, nothing to install).

MUJOCO_GL must be set before the first `import mujoco` in the process, hence here at collection time.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def connect() -> Iterator[Callable[..., object]]:
    """Factory: `XArmAPI(host, is_radian=True, **kwargs)`; every client is disconnected afterwards."""
    from xarm.wrapper import XArmAPI

    arms: list[XArmAPI] = []

    def _connect(host: str, **kwargs: object) -> XArmAPI:
        arm = XArmAPI(host, is_radian=True, **kwargs)
        arms.append(arm)
        return arm

    yield _connect
    for arm in arms:
        arm.disconnect()

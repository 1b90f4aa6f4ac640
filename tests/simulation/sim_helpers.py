"""Shared helpers of the simulation tests (polling, the arm's ready pose)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

#: grasp point 0.30 m above the table in front of the arm, tool pointing down (config/sim.yaml)
READY = np.array([0.0, -0.6406, -0.7074, 0.0, 1.3481, 0.0])


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll `predicate` until it is truthy or `timeout` seconds pass; returns the final truth value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)

"""Helpers shared by the driver tests."""

from __future__ import annotations

import numpy as np


def joint_vector(msg, names) -> np.ndarray:
    """Positions of `names` from a JointState, in that order."""
    index = {n: i for i, n in enumerate(msg.name)}
    return np.array([msg.position[index[n]] for n in names])

"""The TCP pose the loopback controller reports, in the SDK's units and angle convention.

Kinematics come from the project's URDF through `evo1_ros.control.kinematics` (one model for the
driver, teleop and the controller). At q = 0 the flange is at (207, 0, 112) mm with roll = π. Poses
use the SDK convention: [x, y, z] in mm and roll/pitch/yaw (rad, fixed-axis XYZ,
R = Rz(yaw)·Ry(pitch)·Rx(roll)).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from evo1_ros.control.kinematics import FLANGE_LINK, SerialChain
from evo1_ros.control.kinematics import rotation_log as matrix_to_axis_angle
from evo1_ros.control.urdf import rpy_matrix as rpy_to_matrix

__all__ = ["flange_transform", "matrix_to_axis_angle", "matrix_to_rpy", "rpy_to_matrix", "tcp_pose"]


@lru_cache(maxsize=1)
def _flange_chain() -> SerialChain:
    return SerialChain.from_urdf(tip=FLANGE_LINK)


def matrix_to_rpy(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of `rpy_to_matrix` (pitch in [-π/2, π/2])."""
    pitch = float(np.arctan2(-rot[2, 0], np.hypot(rot[0, 0], rot[1, 0])))
    if abs(np.cos(pitch)) < 1e-9:  # gimbal lock: put everything into roll
        return float(np.arctan2(-rot[1, 2], rot[1, 1])), pitch, 0.0
    return float(np.arctan2(rot[2, 1], rot[2, 2])), pitch, float(np.arctan2(rot[1, 0], rot[0, 0]))


def flange_transform(q: Sequence[float]) -> np.ndarray:
    """4×4 transform of link6 (the flange) in the base frame, metres."""
    if len(q) < 6:
        raise ValueError("need 6 joint angles")
    return _flange_chain().fk(np.asarray(q[:6], dtype=float))


def tcp_pose(
    q: Sequence[float], tcp_offset: Sequence[float] = (0, 0, 0, 0, 0, 0)
) -> tuple[list[float], np.ndarray]:
    """TCP pose as the SDK reports it ([x, y, z mm, roll, pitch, yaw rad]) and its rotation matrix.

    `tcp_offset` is the SDK's `set_tcp_offset` value: [x, y, z mm, roll, pitch, yaw rad] in the flange frame.
    """
    t = flange_transform(q)
    offset = np.eye(4)
    offset[:3, :3] = rpy_to_matrix(*[float(v) for v in tcp_offset[3:6]])
    offset[:3, 3] = np.asarray(tcp_offset[:3], dtype=float) / 1000.0
    t = t @ offset
    roll, pitch, yaw = matrix_to_rpy(t[:3, :3])
    xyz_mm = (t[:3, 3] * 1000.0).tolist()
    return [*xyz_mm, roll, pitch, yaw], t[:3, :3]

"""Forward kinematics of the xArm6 flange, for the TCP pose the loopback controller reports.

Joint origins from the URDF (docs/reference/xarm.md §4.1); all joints revolve about their local z.
At q = 0 the flange is at (207, 0, 112) mm with roll = π. Poses use the SDK convention:
[x, y, z] in mm and roll/pitch/yaw (rad, fixed-axis XYZ, R = Rz(yaw)·Ry(pitch)·Rx(roll)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_HALF_PI = np.pi / 2.0
# (xyz in m, rpy in rad) of joint1..joint6, parent -> child
_JOINT_ORIGINS: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = (
    ((0.0, 0.0, 0.267), (0.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (-_HALF_PI, 0.0, 0.0)),
    ((0.0535, -0.2845, 0.0), (0.0, 0.0, 0.0)),
    ((0.0775, 0.3425, 0.0), (-_HALF_PI, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (_HALF_PI, 0.0, 0.0)),
    ((0.076, 0.097, 0.0), (-_HALF_PI, 0.0, 0.0)),
)


def rpy_to_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rotation matrix of fixed-axis roll/pitch/yaw (URDF and xArm convention)."""
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def matrix_to_rpy(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of `rpy_to_matrix` (pitch in [-π/2, π/2])."""
    pitch = float(np.arctan2(-rot[2, 0], np.hypot(rot[0, 0], rot[1, 0])))
    if abs(np.cos(pitch)) < 1e-9:  # gimbal lock: put everything into roll
        return float(np.arctan2(-rot[1, 2], rot[1, 1])), pitch, 0.0
    return float(np.arctan2(rot[2, 1], rot[2, 2])), pitch, float(np.arctan2(rot[1, 0], rot[0, 0]))


def matrix_to_axis_angle(rot: np.ndarray) -> np.ndarray:
    """Rotation vector (axis · angle, rad) of a rotation matrix."""
    cos_a = float(np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0))
    angle = float(np.arccos(cos_a))
    if angle < 1e-9:
        return np.zeros(3)
    if np.pi - angle < 1e-6:  # 180°: axis from the diagonal
        axis = np.sqrt(np.maximum((np.diag(rot) + 1.0) / 2.0, 0.0))
        i = int(np.argmax(axis))
        for j in range(3):
            if j != i and rot[i, j] < 0.0:
                axis[j] = -axis[j]
        return axis / np.linalg.norm(axis) * angle
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    return axis / (2.0 * np.sin(angle)) * angle


def flange_transform(q: Sequence[float]) -> np.ndarray:
    """4×4 transform of link6 (the flange) in the base frame, metres."""
    if len(q) < 6:
        raise ValueError("need 6 joint angles")
    t = np.eye(4)
    for (xyz, rpy), angle in zip(_JOINT_ORIGINS, q[:6], strict=True):
        origin = np.eye(4)
        origin[:3, :3] = rpy_to_matrix(*rpy)
        origin[:3, 3] = xyz
        joint = np.eye(4)
        joint[:3, :3] = rpy_to_matrix(0.0, 0.0, float(angle))
        t = t @ origin @ joint
    return t


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

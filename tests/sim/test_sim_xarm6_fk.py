"""Forward kinematics used for the reported TCP pose."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from evo1_ros.sim.xarm6_fk import matrix_to_axis_angle, rpy_to_matrix, tcp_pose


def test_zero_pose_matches_reference() -> None:
    pose, rot = tcp_pose([0.0] * 6)
    assert np.allclose(pose[:3], [207.0, 0.0, 112.0], atol=1e-6)  # docs/xarm_protocol.md §9
    assert np.isclose(abs(pose[3]), np.pi) and np.isclose(pose[4], 0.0) and np.isclose(pose[5], 0.0)
    assert np.allclose(rot[:, 2], [0, 0, -1])  # tool z points down


def test_joint1_rotates_about_base_z_and_tcp_offset() -> None:
    pose, _ = tcp_pose([np.pi / 2, 0, 0, 0, 0, 0])
    assert np.allclose(pose[:3], [0.0, 207.0, 112.0], atol=1e-6)
    pose_tcp, _ = tcp_pose([0.0] * 6, tcp_offset=[0, 0, 172, 0, 0, 0])
    assert np.allclose(pose_tcp[:3], [207.0, 0.0, 112.0 - 172.0], atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.floats(-3.1, 3.1), st.floats(-1.5, 1.5), st.floats(-3.1, 3.1))
def test_rpy_and_axis_angle_roundtrip(roll: float, pitch: float, yaw: float) -> None:
    rot = rpy_to_matrix(roll, pitch, yaw)
    rv = matrix_to_axis_angle(rot)
    angle = np.linalg.norm(rv)
    if angle > 1e-9:
        k = rv / angle
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        rebuilt = np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx
    else:
        rebuilt = np.eye(3)
    assert np.allclose(rebuilt, rot, atol=1e-6)

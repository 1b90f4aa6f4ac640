"""Unit conventions: REP-103 <-> official xArm6 (deg + raw gripper pulses), known values and round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evo1_ros.control.limits import ARM_JOINTS, GRIPPER_JOINT, GripperPulseMap
from evo1_ros.control.units import (
    UnitConvention,
    from_convention,
    parse_convention,
    to_convention,
)

NAMES = [*ARM_JOINTS, GRIPPER_JOINT]
GRIPPER = GripperPulseMap()  # xarm_ros2: pulses = 850 - 1000 * rad


def test_known_values_official_xarm6() -> None:
    rad = np.array([0.0, math.pi / 2, -math.pi / 4, math.pi, 0.1, -2.0, 0.85])
    out = to_convention(rad, NAMES, UnitConvention.OFFICIAL_XARM6, GRIPPER)
    np.testing.assert_allclose(out[:6], [0.0, 90.0, -45.0, 180.0, math.degrees(0.1), math.degrees(-2.0)])
    assert out[6] == pytest.approx(0.0)  # 0.85 rad = closed = 0 pulses
    assert to_convention(np.zeros(7), NAMES, "official_xarm6", GRIPPER)[6] == pytest.approx(850.0)  # open


def test_official_client_init_pose_to_rep103() -> None:
    """The official xArm6 client's start pose (degrees, docs/evo1_checkpoints.md §7) with a half-open gripper."""
    deg = np.array([4.3, 15.5, -9.4, 182.6, 100.4, 0.3, 425.0])
    rad = from_convention(deg, NAMES, UnitConvention.OFFICIAL_XARM6, GRIPPER)
    np.testing.assert_allclose(rad[:6], np.radians(deg[:6]))
    assert rad[6] == pytest.approx(0.425)


def test_custom_gripper_map_is_used() -> None:
    gripper = GripperPulseMap(open_pulses=800.0, pulses_per_rad=500.0, max_pulses=800.0)
    out = to_convention(np.array([0.2]), [GRIPPER_JOINT], "official_xarm6", gripper)
    assert out[0] == pytest.approx(700.0)


@pytest.mark.parametrize("convention", list(UnitConvention))
def test_round_trip_vector_and_chunk(convention: UnitConvention) -> None:
    rng = np.random.default_rng(3)
    chunk = rng.uniform(-3.0, 3.0, size=(50, 7))
    chunk[:, 6] = rng.uniform(-0.1, 0.95, size=50)  # outside the gripper range too: never clamped
    for values in (chunk[0], chunk):
        there = to_convention(values, NAMES, convention, GRIPPER)
        assert there.shape == values.shape and there.dtype == np.float64
        back = from_convention(there, NAMES, convention, GRIPPER)
        np.testing.assert_allclose(back, values, rtol=0, atol=1e-12)
        # and the other way round, starting from the convention's units
        np.testing.assert_allclose(
            to_convention(from_convention(there, NAMES, convention, GRIPPER), NAMES, convention, GRIPPER),
            there,
            rtol=0,
            atol=1e-9,
        )


def test_rep103_is_identity_and_copies() -> None:
    q = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    out = to_convention(q, ["a", "b"], UnitConvention.REP103, GRIPPER)
    np.testing.assert_array_equal(out, q)
    out[0, 0] = 9.0
    assert q[0, 0] == np.float32(0.1)


def test_joint_order_follows_names() -> None:
    names = [GRIPPER_JOINT, "joint3"]
    out = to_convention(np.array([0.0, math.pi]), names, "official_xarm6", GRIPPER)
    np.testing.assert_allclose(out, [850.0, 180.0])


def test_parse_convention() -> None:
    assert parse_convention("rep103") is UnitConvention.REP103
    assert parse_convention(" Official_XArm6 ") is UnitConvention.OFFICIAL_XARM6
    assert parse_convention(UnitConvention.REP103) is UnitConvention.REP103
    with pytest.raises(ValueError, match=r"rep103.*official_xarm6"):
        parse_convention("degrees")
    with pytest.raises(ValueError, match="allowed"):
        parse_convention(3)  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="no unit in the official_xarm6"):
        to_convention(np.zeros(2), ["joint1", "elbow"], "official_xarm6", GRIPPER)
    with pytest.raises(ValueError, match="duplicate"):
        from_convention(np.zeros(2), ["joint1", "joint1"], "official_xarm6", GRIPPER)
    with pytest.raises(ValueError, match="D = 7"):
        to_convention(np.zeros(6), NAMES, "official_xarm6", GRIPPER)
    with pytest.raises(ValueError, match="D = 7"):
        to_convention(np.zeros((50, 6)), NAMES, "official_xarm6", GRIPPER)
    with pytest.raises(ValueError, match="NaN"):
        from_convention(np.array([0, 0, 0, 0, 0, 0, np.nan]), NAMES, "official_xarm6", GRIPPER)
    with pytest.raises(ValueError, match="numeric"):
        to_convention(np.array(["a"] * 7), NAMES, "rep103", GRIPPER)
    with pytest.raises(ValueError, match="unknown unit convention"):
        to_convention(np.zeros(7), NAMES, "deg", GRIPPER)

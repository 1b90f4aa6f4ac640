"""JointLimits / GripperPulseMap: the shipped config, validation of bad values, gripper units."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from evo1_ros.control.limits import (
    ARM_JOINTS,
    GRIPPER_JOINT,
    GripperPulseMap,
    JointLimits,
    default_limits_path,
)

# docs/xarm_protocol.md §9: the SDK's client-side pre-check table (rad) and the "1305 series" table.
SDK_TABLE = {
    "joint1": (-2 * math.pi, 2 * math.pi),
    "joint2": (-2.059488, 2.094395),
    "joint3": (-3.92699, 0.191986),
    "joint4": (-2 * math.pi, 2 * math.pi),
    "joint5": (-1.692969, math.pi),
    "joint6": (-2 * math.pi, 2 * math.pi),
}
SERIES_1305 = {"joint2": (-2.042035, 2.024581), "joint3": (-3.822271, 0.174532)}


def test_shipped_config_has_all_joints_in_order() -> None:
    lim = JointLimits.from_yaml()
    assert lim.names == (*ARM_JOINTS, GRIPPER_JOINT)
    assert lim.size == 7
    assert lim.index("drive_joint") == 6
    assert (lim.lower[6], lim.upper[6]) == (0.0, 0.85)


def test_shipped_limits_are_inside_every_sdk_table() -> None:
    """A command inside the config is never rejected by the SDK pre-check (-8) on any xArm6."""
    lim = JointLimits.from_yaml()
    for name, (lo, hi) in SDK_TABLE.items():
        i = lim.index(name)
        assert lim.lower[i] >= lo - 1e-6 and lim.upper[i] <= hi + 1e-6, name
        if name in SERIES_1305:
            lo2, hi2 = SERIES_1305[name]
            assert lim.lower[i] >= lo2 - 1e-9 and lim.upper[i] <= hi2 + 1e-9, name


def test_shipped_caps_are_conservative() -> None:
    lim = JointLimits.from_yaml()
    arm = lim.subset(ARM_JOINTS)
    assert np.all(arm.max_velocity <= 2.14)  # MoveIt's xArm6 value, itself below the 3.14 hardware limit
    assert np.all(arm.max_acceleration <= 10.0)
    assert np.all(lim.velocity_limit <= math.pi + 1e-9)
    assert np.all(lim.max_velocity <= lim.velocity_limit)


def test_default_path_points_at_repo_config() -> None:
    assert default_limits_path().name == "xarm6_limits.yaml"
    assert default_limits_path().is_file()


def test_subset_clip_within() -> None:
    lim = JointLimits.from_yaml()
    sub = lim.subset(["joint3", "joint1"])
    assert sub.names == ("joint3", "joint1")
    assert sub.upper[0] == lim.upper[2]
    q = np.array([1.0, 100.0])
    assert np.allclose(sub.clip(q), [sub.upper[0], sub.upper[1]])
    assert not sub.within(q)
    assert sub.within(sub.clip(q))
    assert sub.within(sub.upper + 1e-4, tolerance=1e-3)
    with pytest.raises(KeyError):
        lim.index("joint7")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ["a", "a"]}, "duplicate"),
        ({"lower": [0.0, 0.0]}, "lower < upper"),
        ({"max_velocity": [0.0, 1.0]}, "must be > 0"),
        ({"max_acceleration": [1.0, -1.0]}, "must be > 0"),
        ({"velocity_limit": [0.5, 5.0]}, "exceeds velocity_limit"),
        ({"upper": [1.0, float("nan")]}, "finite"),
        ({"upper": [1.0]}, "expected 2 values"),
    ],
)
def test_bad_limits_are_refused(kwargs: dict, message: str) -> None:
    base = {
        "names": ["a", "b"],
        "lower": [-1.0, -1.0],
        "upper": [0.0, 1.0],
        "max_velocity": [1.0, 1.0],
        "max_acceleration": [1.0, 1.0],
        "velocity_limit": [2.0, 2.0],
    }
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        JointLimits.create(**base)


def test_from_mapping_requires_fields(tmp_path) -> None:
    path = tmp_path / "lim.yaml"
    path.write_text(yaml.safe_dump({"joints": {"a": {"lower": -1, "upper": 1, "max_velocity": 1}}}))
    with pytest.raises(ValueError, match="max_acceleration"):
        JointLimits.from_yaml(path)
    path.write_text(
        yaml.safe_dump({"joints": {"a": {"lower": -1, "upper": 1, "max_velocity": 1, "max_acceleration": 2}}})
    )
    lim = JointLimits.from_yaml(path)
    assert lim.names == ("a",) and lim.velocity_limit[0] == 1.0


def test_gripper_pulse_mapping_matches_xarm_ros2() -> None:
    g = GripperPulseMap.from_yaml()
    assert g.joint == "drive_joint"
    assert g.rad_to_pulses(0.0) == 850.0  # open
    assert g.rad_to_pulses(0.85) == pytest.approx(0.0)  # closed
    assert g.rad_to_pulses(0.425) == pytest.approx(425.0)
    assert g.pulses_to_rad(850) == 0.0
    assert g.pulses_to_rad(0) == pytest.approx(0.85)
    assert g.pulses_to_rad(400) == pytest.approx(0.45)
    assert g.rad_range == pytest.approx((0.0, 0.85))
    for rad in np.linspace(0.0, 0.85, 18):
        assert g.pulses_to_rad(g.rad_to_pulses(rad)) == pytest.approx(rad)


def test_gripper_mapping_clamps_and_refuses_nan() -> None:
    g = GripperPulseMap()
    assert g.rad_to_pulses(-0.2) == 850.0
    assert g.rad_to_pulses(1.5) == 0.0
    assert g.pulses_to_rad(-10) == pytest.approx(0.85)  # Studio/SDK readings go down to -10
    assert g.pulses_to_rad(900) == 0.0
    with pytest.raises(ValueError):
        g.rad_to_pulses(float("nan"))
    with pytest.raises(ValueError):
        g.pulses_to_rad(float("inf"))


def test_gripper_config_rejects_unknown_keys_and_bad_values(tmp_path) -> None:
    path = tmp_path / "lim.yaml"
    path.write_text(yaml.safe_dump({"gripper": {"open_pulses": 850, "speed": 3}}))
    with pytest.raises(ValueError, match="unknown gripper keys"):
        GripperPulseMap.from_yaml(path)
    with pytest.raises(ValueError):
        GripperPulseMap(min_pulses=900.0)
    with pytest.raises(ValueError):
        GripperPulseMap(rate_hz=0.0)

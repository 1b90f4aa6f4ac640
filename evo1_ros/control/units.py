"""Unit conventions of a policy's state/action vectors, converted at the policy's boundary.

The stack runs in REP-103 units (arm joints in rad, the gripper's ``drive_joint`` in rad, xarm_ros2
convention). Checkpoints made with the official Evo-1 xArm6 pipeline were trained on, and emit,
arm joints in **degrees** and the gripper in **raw xArm pulses** (docs/evo1_checkpoints.md §7). The
policy node (and the recorder, for datasets meant for the official trainer) convert with the functions
below, so such a checkpoint drives our driver correctly.

The conversion is a pure per-joint affine map, applied to joint *positions*. It never clamps: a unit
change must be exactly invertible, and keeping commands inside the joint range is the safety filter's
and the driver's job. Non-finite values are refused, since a NaN joint reading or target must never
be passed on silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum

import numpy as np

from .limits import ARM_JOINTS, GripperPulseMap

_DEG_PER_RAD = 180.0 / math.pi


class UnitConvention(str, Enum):
    """How a policy's joint vector is expressed."""

    REP103 = "rep103"  # arm joints rad, drive_joint rad (0 = open, 0.85 = closed)
    OFFICIAL_XARM6 = "official_xarm6"  # arm joints deg, drive_joint raw gripper pulses (850 = open)


def parse_convention(text: str | UnitConvention) -> UnitConvention:
    """``"rep103"`` / ``"official_xarm6"`` (case and surrounding blanks ignored) -> UnitConvention."""
    if isinstance(text, UnitConvention):
        return text
    if not isinstance(text, str):
        raise ValueError(
            f"unit convention must be a string, got {type(text).__name__}; "
            f"allowed: {', '.join(c.value for c in UnitConvention)}"
        )
    key = text.strip().lower()
    for conv in UnitConvention:
        if conv.value == key:
            return conv
    raise ValueError(
        f"unknown unit convention {text!r}; allowed: {', '.join(c.value for c in UnitConvention)}"
    )


def _affine(
    joint_names: Sequence[str], convention: UnitConvention, gripper: GripperPulseMap
) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint (scale, offset) with ``converted = scale * rep103 + offset``."""
    names = [str(n) for n in joint_names]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate joint names in {names}")
    scale = np.ones(len(names))
    offset = np.zeros(len(names))
    if convention is UnitConvention.REP103:
        return scale, offset
    for i, name in enumerate(names):
        if name in ARM_JOINTS:
            scale[i] = _DEG_PER_RAD
        elif name == gripper.joint:
            # pulses = open_pulses - pulses_per_rad * rad (the same map the driver uses, without clamping)
            scale[i] = -gripper.pulses_per_rad
            offset[i] = gripper.open_pulses
        else:
            raise ValueError(
                f"joint {name!r} has no unit in the {convention.value} convention; it knows the arm "
                f"joints {list(ARM_JOINTS)} and the gripper joint {gripper.joint!r}"
            )
    return scale, offset


def _checked(values: np.ndarray, joint_names: Sequence[str], what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ValueError(f"{what} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.shape[-1] != len(joint_names):
        raise ValueError(
            f"{what} must have shape (D,) or (T, D) with D = {len(joint_names)} joints "
            f"{list(joint_names)}, got shape {arr.shape}"
        )
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contain NaN or inf; refusing to convert a broken joint vector")
    return arr


def to_convention(
    values: np.ndarray,
    joint_names: Sequence[str],
    convention: UnitConvention | str,
    gripper: GripperPulseMap,
) -> np.ndarray:
    """REP-103 joint positions (last axis in ``joint_names`` order) -> ``convention`` (float64 copy)."""
    conv = parse_convention(convention)
    arr = _checked(values, joint_names, "joint positions")
    scale, offset = _affine(joint_names, conv, gripper)
    return arr * scale + offset


def from_convention(
    values: np.ndarray,
    joint_names: Sequence[str],
    convention: UnitConvention | str,
    gripper: GripperPulseMap,
) -> np.ndarray:
    """Joint positions in ``convention`` -> REP-103 (the exact inverse of ``to_convention``)."""
    conv = parse_convention(convention)
    arr = _checked(values, joint_names, "joint positions")
    scale, offset = _affine(joint_names, conv, gripper)
    return (arr - offset) / scale

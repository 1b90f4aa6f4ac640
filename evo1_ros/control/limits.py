"""Joint limits, speed caps and the gripper's rad <-> pulse mapping, read from one YAML file.

The driver, the policy's safety filter, teleop and the kinematics all need the same numbers; keeping
them in ``config/xarm6_limits.yaml`` (user-facing) and in one small class avoids the copies drifting.
Units follow REP-103: rad, rad/s, rad/s^2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from evo1_ros.paths import config_file

ARM_JOINTS: tuple[str, ...] = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6")
GRIPPER_JOINT = "drive_joint"
LIMITS_FILE = "xarm6_limits.yaml"


def default_limits_path() -> Path:
    """``config/xarm6_limits.yaml`` of the source tree or the installed package share."""
    return config_file(LIMITS_FILE)


def _as_vector(values: Iterable[float], n: int, what: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    if arr.shape != (n,):
        raise ValueError(f"{what}: expected {n} values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: values must be finite")
    return arr


@dataclass(frozen=True, eq=False)
class JointLimits:
    """Per-joint position range and the velocity / acceleration caps enforced on commands.

    ``names`` fixes the robot's joint order; every array is indexed in that order.
    ``velocity_limit`` is the hardware limit (URDF), ``max_velocity`` the (lower) cap actually enforced.
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray
    velocity_limit: np.ndarray

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        if not names:
            raise ValueError("JointLimits needs at least one joint")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate joint names in {names}")
        n = len(names)
        object.__setattr__(self, "names", names)
        for field in ("lower", "upper", "max_velocity", "max_acceleration", "velocity_limit"):
            arr = _as_vector(getattr(self, field), n, field)
            arr.setflags(write=False)
            object.__setattr__(self, field, arr)
        if np.any(self.lower >= self.upper):
            raise ValueError("every joint needs lower < upper")
        if np.any(self.max_velocity <= 0) or np.any(self.max_acceleration <= 0):
            raise ValueError("max_velocity and max_acceleration must be > 0")
        if np.any(self.max_velocity > self.velocity_limit):
            bad = [nm for nm, v, lim in zip(names, self.max_velocity, self.velocity_limit) if v > lim]
            raise ValueError(f"max_velocity exceeds velocity_limit for {bad}")

    @classmethod
    def create(
        cls,
        names: Sequence[str],
        lower: Iterable[float],
        upper: Iterable[float],
        max_velocity: Iterable[float],
        max_acceleration: Iterable[float],
        velocity_limit: Iterable[float] | None = None,
    ) -> JointLimits:
        """Build from plain sequences; ``velocity_limit`` defaults to ``max_velocity``."""
        mv = np.asarray(list(max_velocity), dtype=float)
        vl = mv if velocity_limit is None else np.asarray(list(velocity_limit), dtype=float)
        return cls(
            tuple(names),
            np.asarray(list(lower), float),
            np.asarray(list(upper), float),
            mv,
            np.asarray(list(max_acceleration), float),
            vl,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> JointLimits:
        """Build from the ``joints:`` mapping of the YAML file (order of the mapping = joint order)."""
        joints = data.get("joints") if "joints" in data else data
        if not isinstance(joints, Mapping) or not joints:
            raise ValueError("limits file needs a non-empty 'joints' mapping")
        rows = []
        for name, entry in joints.items():
            if not isinstance(entry, Mapping):
                raise ValueError(f"joint {name!r}: expected a mapping")
            missing = {"lower", "upper", "max_velocity", "max_acceleration"} - set(entry)
            if missing:
                raise ValueError(f"joint {name!r}: missing {sorted(missing)}")
            rows.append((name, entry))
        return cls.create(
            [r[0] for r in rows],
            [float(r[1]["lower"]) for r in rows],
            [float(r[1]["upper"]) for r in rows],
            [float(r[1]["max_velocity"]) for r in rows],
            [float(r[1]["max_acceleration"]) for r in rows],
            [float(r[1].get("velocity_limit", r[1]["max_velocity"])) for r in rows],
        )

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> JointLimits:
        """Load ``config/xarm6_limits.yaml`` (or another file with the same layout)."""
        with open(path or default_limits_path(), encoding="utf-8") as fh:
            return cls.from_mapping(yaml.safe_load(fh) or {})

    @property
    def size(self) -> int:
        """Number of joints."""
        return len(self.names)

    def index(self, name: str) -> int:
        """Position of ``name`` in the robot's joint order (``KeyError`` if unknown)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown joint {name!r}; known: {list(self.names)}") from None

    def subset(self, names: Sequence[str]) -> JointLimits:
        """Limits for ``names`` only, in that order (e.g. the six arm joints for IK / servo_j)."""
        idx = [self.index(n) for n in names]
        return JointLimits(
            tuple(names),
            self.lower[idx],
            self.upper[idx],
            self.max_velocity[idx],
            self.max_acceleration[idx],
            self.velocity_limit[idx],
        )

    def clip(self, positions: np.ndarray) -> np.ndarray:
        """Positions clamped into [lower, upper] (same shape; last axis = joints)."""
        return np.clip(np.asarray(positions, dtype=float), self.lower, self.upper)

    def within(self, positions: np.ndarray, tolerance: float = 0.0) -> bool:
        """True when every position lies in [lower - tolerance, upper + tolerance]."""
        q = np.asarray(positions, dtype=float)
        return bool(np.all(q >= self.lower - tolerance) and np.all(q <= self.upper + tolerance))


@dataclass(frozen=True)
class GripperPulseMap:
    """``drive_joint`` [rad] <-> xArm Gripper pulses: ``pulses = open_pulses - pulses_per_rad * rad``.

    xarm_ros2 convention (850 - 1000 * rad): 0 rad = 850 pulses = open, 0.85 rad = 0 pulses = closed.
    Both directions clamp, so a command can never leave the gripper's range.
    """

    open_pulses: float = 850.0
    pulses_per_rad: float = 1000.0
    min_pulses: float = 0.0
    max_pulses: float = 850.0
    epsilon_pulses: float = 2.0
    rate_hz: float = 10.0
    joint: str = GRIPPER_JOINT

    def __post_init__(self) -> None:
        vals = (
            self.open_pulses,
            self.pulses_per_rad,
            self.min_pulses,
            self.max_pulses,
            self.epsilon_pulses,
            self.rate_hz,
        )
        if not all(np.isfinite(v) for v in vals):
            raise ValueError("gripper mapping values must be finite")
        if self.pulses_per_rad <= 0 or self.min_pulses >= self.max_pulses or self.rate_hz <= 0:
            raise ValueError("gripper mapping needs pulses_per_rad > 0, min < max pulses, rate_hz > 0")
        if self.epsilon_pulses < 0:
            raise ValueError("epsilon_pulses must be >= 0")

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> GripperPulseMap:
        """Read the ``gripper:`` section of the limits file (defaults = xarm_ros2 values)."""
        with open(path or default_limits_path(), encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        section = data.get("gripper") or {}
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(section) - known
        if unknown:
            raise ValueError(f"unknown gripper keys {sorted(unknown)}")
        kwargs = {k: (str(v) if k == "joint" else float(v)) for k, v in section.items()}
        return cls(**kwargs)

    @property
    def rad_range(self) -> tuple[float, float]:
        """The joint range [rad] that maps onto [min_pulses, max_pulses]."""
        a = (self.open_pulses - self.max_pulses) / self.pulses_per_rad
        b = (self.open_pulses - self.min_pulses) / self.pulses_per_rad
        return (min(a, b), max(a, b))

    def rad_to_pulses(self, rad: float) -> float:
        """Joint angle -> pulse command, clamped to [min_pulses, max_pulses]. NaN raises."""
        if not np.isfinite(rad):
            raise ValueError(f"gripper position must be finite, got {rad}")
        pulses = self.open_pulses - self.pulses_per_rad * float(rad)
        return float(min(max(pulses, self.min_pulses), self.max_pulses))

    def pulses_to_rad(self, pulses: float) -> float:
        """Reported pulses -> joint angle, pulses clamped first (readings of -10 .. 850 happen)."""
        if not np.isfinite(pulses):
            raise ValueError(f"gripper pulses must be finite, got {pulses}")
        p = min(max(float(pulses), self.min_pulses), self.max_pulses)
        return (self.open_pulses - p) / self.pulses_per_rad

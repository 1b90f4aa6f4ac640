"""A validated joint trajectory (JointTrajectory semantics, no ROS) and its time interpolation.

The driver receives ``trajectory_msgs/JointTrajectory`` from the policy or teleop; before anything
moves, the message is checked here and turned into arrays in the robot's joint order, so the
streaming thread only ever sees finite, in-limit, strictly timed points. Rejections carry a short
machine-readable reason (``TrajectoryError.reason``) for the driver's status/diagnostics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from evo1_ros.control.limits import JointLimits

# Reasons a trajectory is rejected (TrajectoryError.reason).
UNKNOWN_JOINT = "unknown_joint"
MISSING_JOINT = "missing_joint"
DUPLICATE_JOINT = "duplicate_joint"
NO_JOINTS = "no_joints"
SHAPE_MISMATCH = "shape_mismatch"
NOT_FINITE = "not_finite"
NEGATIVE_TIME = "negative_time"
NON_INCREASING_TIME = "non_increasing_time"
POSITION_LIMIT = "position_limit"
VELOCITY_LIMIT = "velocity_limit"

DEFAULT_POSITION_TOLERANCE = 1e-3  # rad: points this far outside a limit are clamped, not rejected


class TrajectoryError(ValueError):
    """A trajectory that must not be executed; ``reason`` is one of the module's reason constants."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Points of one trajectory in the robot's joint order (only build it through :func:`validate`).

    ``joint_names`` is the subset of the robot's joints the trajectory commands, in robot order;
    ``indices`` are their positions in ``JointLimits.names``. ``times`` are seconds from the
    trajectory's start time, strictly increasing and >= 0. ``positions`` and ``velocities`` are
    (N, len(joint_names)); ``velocities`` is None when the message gave none (linear interpolation).
    An empty trajectory (N = 0) means "stop and hold".
    """

    joint_names: tuple[str, ...]
    indices: np.ndarray
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray | None

    @property
    def empty(self) -> bool:
        """True for a trajectory without points (the JTC "stop" request)."""
        return self.times.size == 0

    @property
    def duration(self) -> float:
        """Time from start of the last point (0 for an empty trajectory)."""
        return float(self.times[-1]) if self.times.size else 0.0

    def sample(
        self,
        t: float,
        start_positions: np.ndarray,
        start_velocities: np.ndarray | None = None,
        start_offset: float = 0.0,
    ) -> np.ndarray:
        """Positions at ``t`` seconds from the trajectory start (JTC semantics).

        The arm was at ``start_positions`` (moving at ``start_velocities``) ``start_offset`` seconds
        after the start time, when the trajectory took over. Up to then the start positions are held;
        between then and the first point the motion runs from the start state to the first point;
        between points it is cubic Hermite when velocities were given, otherwise linear; after the
        last point the last point is held.
        """
        if self.empty:
            raise ValueError("cannot sample an empty trajectory")
        q0 = np.asarray(start_positions, dtype=float)
        t0 = float(self.times[0])
        if t >= float(self.times[-1]):
            return self.positions[-1].copy()
        if t < t0:
            if t <= start_offset:
                return q0.copy()
            h = t0 - start_offset
            s = (t - start_offset) / h
            if self.velocities is None:
                return q0 + s * (self.positions[0] - q0)
            v0 = np.zeros_like(q0) if start_velocities is None else np.asarray(start_velocities, float)
            return _hermite(q0, v0, self.positions[0], self.velocities[0], h, s)
        k = int(np.searchsorted(self.times, t, side="right")) - 1
        h = float(self.times[k + 1] - self.times[k])
        s = (t - float(self.times[k])) / h
        p0, p1 = self.positions[k], self.positions[k + 1]
        if self.velocities is None:
            return p0 + s * (p1 - p0)
        return _hermite(p0, self.velocities[k], p1, self.velocities[k + 1], h, s)


def _hermite(
    p0: np.ndarray, v0: np.ndarray, p1: np.ndarray, v1: np.ndarray, h: float, s: float
) -> np.ndarray:
    """Cubic Hermite on one segment of length ``h`` at normalised time ``s`` in [0, 1]."""
    s2 = s * s
    s3 = s2 * s
    h00 = 2 * s3 - 3 * s2 + 1
    h10 = s3 - 2 * s2 + s
    h01 = -2 * s3 + 3 * s2
    h11 = s3 - s2
    return h00 * p0 + h10 * h * v0 + h01 * p1 + h11 * h * v1


def empty_trajectory(limits: JointLimits) -> Trajectory:
    """The "stop and hold" trajectory over all of the robot's joints."""
    n = limits.size
    return Trajectory(limits.names, np.arange(n), np.zeros(0), np.zeros((0, n)), None)


def validate(
    joint_names: Sequence[str],
    times_from_start: Iterable[float],
    positions: Sequence[Sequence[float]] | np.ndarray,
    limits: JointLimits,
    velocities: Sequence[Sequence[float]] | np.ndarray | None = None,
    *,
    required: Iterable[str] | None = None,
    position_tolerance: float = DEFAULT_POSITION_TOLERANCE,
    velocity_tolerance: float = 1e-6,
) -> Trajectory:
    """Check a trajectory given as plain arrays and return it in robot joint order, or raise.

    ``positions`` / ``velocities`` are (N, len(joint_names)) in the order of ``joint_names``; an
    empty ``velocities`` (no rows) counts as "not given". ``required`` names the joints every
    trajectory must contain (default: all of ``limits.names``); other known joints may be left out
    and are then held by the streamer. Points up to ``position_tolerance`` outside a limit are
    clamped onto it; further out is a rejection. Given velocities must satisfy |v| <= max_velocity
    (+ ``velocity_tolerance``). An empty trajectory (no points) is valid and means "stop".

    Raises :class:`TrajectoryError` with ``reason`` in: no_joints, unknown_joint, duplicate_joint,
    missing_joint, shape_mismatch, not_finite, negative_time, non_increasing_time, position_limit,
    velocity_limit.
    """
    names = [str(n) for n in joint_names]
    if not names:
        raise TrajectoryError(NO_JOINTS, "trajectory names no joints")
    unknown = [n for n in names if n not in limits.names]
    if unknown:
        raise TrajectoryError(UNKNOWN_JOINT, f"unknown joint(s) {unknown}; robot has {list(limits.names)}")
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise TrajectoryError(DUPLICATE_JOINT, f"joint(s) named twice: {dups}")
    req = list(limits.names) if required is None else [str(n) for n in required]
    missing = [n for n in req if n not in names]
    if missing:
        raise TrajectoryError(MISSING_JOINT, f"trajectory lacks joint(s) {missing}")

    try:
        t = np.asarray(list(times_from_start), dtype=float).reshape(-1)
        q = np.asarray(positions, dtype=float)
        v = None if velocities is None else np.asarray(velocities, dtype=float)
    except (TypeError, ValueError) as exc:  # ragged rows or non-numbers
        raise TrajectoryError(SHAPE_MISMATCH, f"points are not a rectangular numeric array ({exc})") from None
    k = len(names)
    n = t.size
    if n == 0 and q.size == 0 and (v is None or v.size == 0):
        idx = np.sort(_indices(names, limits))
        return Trajectory(tuple(limits.names[i] for i in idx), idx, np.zeros(0), np.zeros((0, k)), None)
    if q.shape != (n, k):
        raise TrajectoryError(SHAPE_MISMATCH, f"positions have shape {q.shape}, expected ({n}, {k})")
    if v is not None and v.size == 0:
        v = None
    if v is not None and v.shape != (n, k):
        raise TrajectoryError(SHAPE_MISMATCH, f"velocities have shape {v.shape}, expected ({n}, {k})")

    if not np.all(np.isfinite(t)):
        raise TrajectoryError(NOT_FINITE, "time_from_start contains NaN or inf")
    if not np.all(np.isfinite(q)):
        raise TrajectoryError(NOT_FINITE, "positions contain NaN or inf")
    if v is not None and not np.all(np.isfinite(v)):
        raise TrajectoryError(NOT_FINITE, "velocities contain NaN or inf")
    if t[0] < 0:
        raise TrajectoryError(NEGATIVE_TIME, f"first time_from_start is {t[0]} < 0")
    steps = np.diff(t)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        raise TrajectoryError(
            NON_INCREASING_TIME, f"time_from_start[{i + 1}]={t[i + 1]} <= time_from_start[{i}]={t[i]}"
        )

    idx = _indices(names, limits)
    order = np.argsort(idx, kind="stable")
    idx = idx[order]
    q = q[:, order]
    v = None if v is None else v[:, order]
    lo, hi = limits.lower[idx], limits.upper[idx]
    below = q < lo - position_tolerance
    above = q > hi + position_tolerance
    if np.any(below | above):
        p, j = np.argwhere(below | above)[0]
        raise TrajectoryError(
            POSITION_LIMIT,
            f"point {p}: {limits.names[idx[j]]}={q[p, j]:.6f} outside [{lo[j]:.6f}, {hi[j]:.6f}]",
        )
    q = np.clip(q, lo, hi)
    if v is not None:
        cap = limits.max_velocity[idx] + velocity_tolerance
        over = np.abs(v) > cap
        if np.any(over):
            p, j = np.argwhere(over)[0]
            raise TrajectoryError(
                VELOCITY_LIMIT,
                f"point {p}: {limits.names[idx[j]]} velocity {v[p, j]:.6f} beyond cap {cap[j]:.6f}",
            )
    for arr in (t, q) if v is None else (t, q, v):
        arr.setflags(write=False)
    idx.setflags(write=False)
    return Trajectory(tuple(limits.names[i] for i in idx), idx, t, q, v)


def _indices(names: Sequence[str], limits: JointLimits) -> np.ndarray:
    return np.array([limits.index(n) for n in names], dtype=int)

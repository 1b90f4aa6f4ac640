"""The policy's own check of a planned trajectory before it goes to the arm (no ROS, no torch).

The driver clamps whatever it receives, but it cannot tell a policy that drifts from one that is
broken. This filter sits between the chunk scheduler and the ``JointTrajectory`` publisher and
enforces, per joint, in this order:

1. finite values (times, positions, measured state): anything else is a fault, never clamped;
2. position limits (the driver's ``JointLimits``);
3. distance of the first point from the measured state (``max_start_distance``);
4. change between consecutive points: ``max_step_change`` (LeRobot's ``max_relative_target``) and
   the velocity cap ``velocity_fraction * max_velocity * dt``, applied as a rate limiter.

A violation of 2-4 by at most ``clamp_margin`` is clamped and counted; a larger one is a fault: the
plan must not be sent and the policy holds (no guessing). The gripper (``gripper_joint``) is
different: its range and rate are always clamped (a model that says "more than closed" means
"closed"), and it is left out of the start-distance check (a gripper blocked by the object it grips
lags its command by design).

Velocities are finite differences of the filtered positions, limited so that the driver's cubic
Hermite interpolation never overshoots a point (Fritsch-Carlson): zero at local extrema and at the
last point (the plan ends at rest), and never above the velocity cap. The output passes
``evo1_ros.control.trajectory.validate`` exactly as the driver calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evo1_ros.control.limits import GRIPPER_JOINT, JointLimits
from evo1_ros.parameters import param, validate_fields


@dataclass(frozen=True)
class SafetyConfig:
    """Caps of the policy's safety filter (rad, rad per control step); the policy node's parameters.

    The defaults are the node's, so a filter built directly (tests, benchmarks) runs like the node.
    """

    max_step_change: float = param(
        0.1,
        "largest change between consecutive steps (rad; LeRobot max_relative_target); > 0",
        min=0.0,
    )
    max_start_distance: float = param(
        0.3, "largest distance first point <-> measured state per arm joint (rad); > 0", min=0.0
    )
    clamp_margin: float = param(
        0.05, "violations up to this (rad) are clamped and counted; beyond: fault and hold", min=0.0
    )
    gripper_joint: str = GRIPPER_JOINT  # joint handled as the gripper (if it is among the joints)
    gripper_max_step_change: float | None = param(
        None,
        "gripper change per step (rad); 0 = velocity cap only",
        min=0.0,
        to_value=lambda value: value or None,
        to_param=lambda value: value or 0.0,
    )
    velocity_fraction: float = param(
        0.5,
        "share of the limits file's max_velocity a plan may use (slow first runs)",
        min=0.01,
        max=1.0,
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        for name in ("max_step_change", "max_start_distance"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name} must be a positive number of rad, got {value!r}")
        g = self.gripper_max_step_change
        if g is not None and g <= 0:
            raise ValueError(f"gripper_max_step_change must be None or > 0 rad, got {g!r}")


@dataclass(frozen=True)
class FilterResult:
    """Filtered plan, or an empty one with ``fault`` set (then hold, send nothing)."""

    positions: np.ndarray  # (N, D) filtered, finite, in limits; (0, D) on a fault
    velocities: np.ndarray  # (N, D) consistent with positions and times (rad/s); (0, D) on a fault
    clamped: int  # number of clamped values
    fault: str | None  # reason in words when the plan must not be sent


class SafetyFilter:
    """Check and clamp plans for the joints ``joint_names`` (in that order) against ``limits``."""

    def __init__(self, limits: JointLimits, joint_names: Sequence[str], config: SafetyConfig) -> None:
        names = [str(n) for n in joint_names]
        try:
            self.limits = limits.subset(names)
        except KeyError as exc:
            raise ValueError(f"safety filter: {exc.args[0]}") from None
        self.joint_names: tuple[str, ...] = tuple(names)
        self.config = config
        self._gripper = np.array([n == config.gripper_joint for n in names])
        self._vmax = self.limits.max_velocity * config.velocity_fraction
        step = np.full(len(names), config.max_step_change)
        if config.gripper_max_step_change is not None:
            step[self._gripper] = config.gripper_max_step_change
        else:
            step[self._gripper] = np.inf
        self._step = step

    @property
    def size(self) -> int:
        return len(self.joint_names)

    def filter(self, times: np.ndarray, positions: np.ndarray, measured: np.ndarray) -> FilterResult:
        """Filter a plan: ``times`` (N,) s (absolute or relative, strictly increasing), ``positions``
        (N, D), ``measured`` (D,) the arm's measured state; all in ``joint_names`` order.

        Raises ValueError only for arrays of the wrong shape (a wiring bug); bad values are faults.
        """
        d = self.size
        t = np.asarray(times, dtype=float).reshape(-1)
        q_in = np.asarray(positions, dtype=float)
        m = np.asarray(measured, dtype=float).reshape(-1)
        if q_in.ndim != 2 or q_in.shape != (t.size, d):
            raise ValueError(
                f"positions have shape {q_in.shape}, expected ({t.size}, {d}) for {self.joint_names}"
            )
        if m.shape != (d,):
            raise ValueError(f"measured has shape {m.shape}, expected ({d},)")
        if t.size == 0:
            return self._fault("empty plan: no points to send", 0)
        if not np.all(np.isfinite(t)):
            return self._fault("plan times contain NaN or inf", 0)
        if not np.all(np.isfinite(q_in)):
            p, j = np.argwhere(~np.isfinite(q_in))[0]
            return self._fault(f"non-finite action: {self.joint_names[j]} at point {p} is {q_in[p, j]}", 0)
        if not np.all(np.isfinite(m)):
            bad = [n for n, v in zip(self.joint_names, m) if not np.isfinite(v)]
            return self._fault(f"measured state is not finite for {bad}", 0)
        dt = np.diff(t)
        if np.any(dt <= 0):
            i = int(np.argmax(dt <= 0))
            return self._fault(f"plan times not strictly increasing at point {i + 1}", 0)

        margin = self.config.clamp_margin
        arm = ~self._gripper
        q = q_in.copy()
        clamped = 0

        # 2. position limits
        lo, hi = self.limits.lower, self.limits.upper
        excess = np.maximum(lo - q, q - hi)
        over = (excess > margin) & arm
        if np.any(over):
            p, j = np.argwhere(over)[0]
            return self._fault(
                f"{self.joint_names[j]}={q[p, j]:.4f} rad at point {p} is {excess[p, j]:.4f} rad outside "
                f"[{lo[j]:.4f}, {hi[j]:.4f}] (clamp margin {margin:.4f})",
                clamped,
            )
        outside = excess > 0
        clamped += int(np.count_nonzero(outside))
        q = np.clip(q, lo, hi)

        # 3. first point vs measured state (arm joints)
        gap = q[0] - m
        excess0 = np.abs(gap) - self.config.max_start_distance
        far = (excess0 > margin) & arm
        if np.any(far):
            j = int(np.argmax(np.where(far, excess0, -np.inf)))
            return self._fault(
                f"{self.joint_names[j]}: first point {q[0, j]:.4f} rad is {abs(gap[j]):.4f} rad from the "
                f"measured {m[j]:.4f} (cap {self.config.max_start_distance:.4f} + margin {margin:.4f})",
                clamped,
            )
        near = (excess0 > 0) & arm
        if np.any(near):
            clamped += int(np.count_nonzero(near))
            q[0, near] = m[near] + np.sign(gap[near]) * self.config.max_start_distance
            q[0] = np.clip(q[0], lo, hi)

        # 4. rate limiter: step cap and velocity cap, relative to the (clamped) previous point.
        # caps[i - 1] is the cap into point i. Every step within its cap (the usual plan) needs no
        # walk: the loop below would clamp nothing and fault nothing. Otherwise walk point by point,
        # since each clamp moves the base of the next step.
        caps = np.minimum(self._step, self._vmax * dt[:, None])
        if np.any(np.abs(np.diff(q, axis=0)) - caps > min(margin, 1e-12)):
            clamped, fault = self._rate_limit(q, caps, margin, clamped)
            if fault is not None:
                return self._fault(fault, clamped)

        return FilterResult(q, self._velocities(t, q), clamped, None)

    def _rate_limit(
        self, q: np.ndarray, caps: np.ndarray, margin: float, clamped: int
    ) -> tuple[int, str | None]:
        """Clamp ``q`` in place, step by step; (clamped count, fault reason or None)."""
        arm = ~self._gripper
        for i in range(1, q.shape[0]):
            cap = caps[i - 1]
            delta = q[i] - q[i - 1]
            excess_i = np.abs(delta) - cap
            bad = (excess_i > margin) & arm
            if np.any(bad):
                j = int(np.argmax(np.where(bad, excess_i, -np.inf)))
                return clamped, (
                    f"{self.joint_names[j]}: step {i - 1}->{i} of {abs(delta[j]):.4f} rad exceeds the cap "
                    f"{cap[j]:.4f} rad (per step {self._step[j]:.4f}, velocity {self._vmax[j]:.3f} rad/s) "
                    f"by more than the margin {margin:.4f}"
                )
            hit = excess_i > 1e-12
            if np.any(hit):
                clamped += int(np.count_nonzero(hit))
                q[i, hit] = q[i - 1, hit] + np.clip(delta[hit], -cap[hit], cap[hit])
        return clamped, None

    def _velocities(self, t: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Monotone (Fritsch-Carlson) point velocities; zero at extrema and at the last point."""
        n = t.size
        v = np.zeros_like(q)
        if n < 2:
            return v
        dt = np.diff(t)[:, None]
        slope = np.diff(q, axis=0) / dt  # (N-1, D), each within the velocity cap
        v[0] = slope[0]
        if n > 2:
            left, right = slope[:-1], slope[1:]
            dt_left, dt_right = dt[:-1], dt[1:]
            central = (dt_left * left + dt_right * right) / (
                dt_left + dt_right
            )  # (q[i+1]-q[i-1])/(t[i+1]-t[i-1])
            same = (left * right) > 0
            bound = 3.0 * np.minimum(np.abs(left), np.abs(right))
            v[1:-1] = np.where(same, np.sign(central) * np.minimum(np.abs(central), bound), 0.0)
        v[-1] = 0.0
        return np.clip(v, -self._vmax, self._vmax)

    def _fault(self, reason: str, clamped: int) -> FilterResult:
        empty = np.zeros((0, self.size))
        return FilterResult(empty, empty.copy(), clamped, reason)

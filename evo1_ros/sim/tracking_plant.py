"""Kinematic plant: each joint tracks its target under velocity and acceleration limits.

This is what the loopback controller uses when no physics simulation is plugged in. It behaves like
an ideal servo with a time-optimal (bang-bang) profile: velocity stays continuous, replanning from
the current state on every new target (what xArm mode 6 and servo_j look like from outside).
Effort is a nominal inertia times acceleration — a stand-in, not dynamics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evo1_ros.sim.plant import JointPlant

_POSITION, _VELOCITY, _HOLD = "position", "velocity", "hold"
_EPS_Q = 1e-9
_EPS_DQ = 1e-6


def _per_joint(value: float | Sequence[float], n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"expected a scalar or {n} values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0):
        raise ValueError("limits must be finite and positive")
    return arr


class TrackingPlant(JointPlant):
    """Velocity/acceleration-limited joint tracker plus a speed-limited gripper."""

    def __init__(
        self,
        n_joints: int = 6,
        max_velocity: float = np.pi,
        max_acceleration: float = 20.0,
        inertia: Sequence[float] | None = None,
        gripper_range: tuple[float, float] = (0.0, 0.86),
    ) -> None:
        self._n = n_joints
        self._vmax_default = _per_joint(max_velocity, n_joints)
        self._amax_default = _per_joint(max_acceleration, n_joints)
        self._inertia = np.asarray(inertia if inertia is not None else np.full(n_joints, 0.5), dtype=float)
        self._q = np.zeros(n_joints)
        self._dq = np.zeros(n_joints)
        self._effort = np.zeros(n_joints)
        self._mode = _POSITION
        self._q_target = np.zeros(n_joints)
        self._dq_target = np.zeros(n_joints)
        self._vmax = self._vmax_default.copy()
        self._amax = self._amax_default.copy()
        self._g_lo, self._g_hi = gripper_range
        self._g = 0.0
        self._g_dq = 0.0
        self._g_target = 0.0
        self._g_vmax = 1.0
        self._g_obstacle: float | None = None

    # --- JointPlant -------------------------------------------------------------------------------
    @property
    def n_joints(self) -> int:
        """Number of joints."""
        return self._n

    def reset(self, q: Sequence[float], gripper: float | None = None) -> None:
        """Teleport to `q` at rest."""
        self._q = np.asarray(q, dtype=float).reshape(self._n).copy()
        self._dq[:] = 0.0
        self._effort[:] = 0.0
        self._q_target = self._q.copy()
        self._mode = _POSITION
        if gripper is not None:
            self._g = self._g_target = float(np.clip(gripper, self._g_lo, self._g_hi))
            self._g_dq = 0.0

    def set_position_target(
        self,
        q: Sequence[float],
        max_velocity: float | Sequence[float],
        max_acceleration: float | Sequence[float],
    ) -> None:
        """Track `q` from the current state."""
        target = np.asarray(q, dtype=float).reshape(self._n)
        if not np.all(np.isfinite(target)):
            raise ValueError("position target must be finite")
        self._q_target = target.copy()
        self._vmax = _per_joint(max_velocity, self._n)
        self._amax = _per_joint(max_acceleration, self._n)
        self._mode = _POSITION

    def set_velocity_target(self, dq: Sequence[float], max_acceleration: float | Sequence[float]) -> None:
        """Track joint velocities."""
        target = np.asarray(dq, dtype=float).reshape(self._n)
        if not np.all(np.isfinite(target)):
            raise ValueError("velocity target must be finite")
        self._dq_target = target.copy()
        self._amax = _per_joint(max_acceleration, self._n)
        self._mode = _VELOCITY

    def hold(self) -> None:
        """Brake at the default acceleration limit, then hold."""
        self._dq_target[:] = 0.0
        self._amax = self._amax_default.copy()
        self._mode = _HOLD

    def set_gripper_target(self, position: float, max_velocity: float) -> None:
        """Move the gripper (rad) at a constant speed."""
        self._g_target = float(np.clip(position, self._g_lo, self._g_hi))
        self._g_vmax = max(float(max_velocity), 1e-6)

    def hold_gripper(self) -> None:
        """Stop the gripper in place."""
        self._g_target = self._g
        self._g_dq = 0.0

    def step(self, dt: float) -> None:
        """Advance by `dt` seconds."""
        if dt <= 0.0:
            return
        dq_old = self._dq
        amax_dt = self._amax * dt
        if self._mode == _POSITION:
            err = self._q_target - self._q
            # fastest speed from which discrete braking (a·dt per step) still stops within |err|
            brake = self._amax * (np.sqrt(0.25 * dt * dt + 2.0 * np.abs(err) / self._amax) - 0.5 * dt)
            speed = np.minimum(np.minimum(self._vmax, brake), np.abs(err) / dt)
            v_des = np.sign(err) * speed
        else:
            v_des = self._dq_target
        dq_new = dq_old + np.clip(v_des - dq_old, -amax_dt, amax_dt)
        self._q = self._q + dq_new * dt
        if self._mode == _POSITION:
            # remove floating-point residue on arrival; the velocity then drops to 0 on the next step
            arrived = np.abs(self._q_target - self._q) < 1e-12
            self._q = np.where(arrived, self._q_target, self._q)
        elif self._mode == _HOLD and np.all(np.abs(dq_new) < _EPS_DQ):
            dq_new = np.zeros(self._n)
            self._q_target = self._q.copy()
            self._vmax = self._vmax_default.copy()
            self._mode = _POSITION
        self._effort = self._inertia * (dq_new - dq_old) / dt
        self._dq = dq_new
        self._step_gripper(dt)

    def _step_gripper(self, dt: float) -> None:
        target = self._g_target
        if self._g_obstacle is not None and target > self._g_obstacle >= self._g - 1e-12:
            target = self._g_obstacle  # closing onto an object: the fingers stall there
        err = target - self._g
        step = float(np.clip(err, -self._g_vmax * dt, self._g_vmax * dt))
        self._g += step
        self._g_dq = step / dt

    @property
    def q(self) -> np.ndarray:
        """Joint positions (rad)."""
        return self._q.copy()

    @property
    def dq(self) -> np.ndarray:
        """Joint velocities (rad/s)."""
        return self._dq.copy()

    @property
    def effort(self) -> np.ndarray:
        """Nominal joint efforts (N·m)."""
        return self._effort.copy()

    @property
    def gripper_position(self) -> float:
        """Drive joint position (rad)."""
        return self._g

    @property
    def gripper_velocity(self) -> float:
        """Drive joint velocity (rad/s)."""
        return self._g_dq

    def is_moving(self) -> bool:
        """True while any joint moves or a position target is not reached."""
        if np.any(np.abs(self._dq) > _EPS_DQ):
            return True
        if self._mode == _POSITION:
            return bool(np.any(np.abs(self._q_target - self._q) > _EPS_Q))
        return self._mode == _VELOCITY and bool(np.any(self._dq_target != 0.0))

    def gripper_is_moving(self) -> bool:
        """True while the gripper is travelling."""
        return abs(self._g_dq) > 1e-9

    # --- extras for tests and scenarios -----------------------------------------------------------
    @property
    def position_target(self) -> np.ndarray:
        """The current position target (rad)."""
        return self._q_target.copy()

    @property
    def velocity_target(self) -> np.ndarray:
        """The current velocity target (rad/s); zero unless tracking velocities."""
        return self._dq_target.copy() if self._mode == _VELOCITY else np.zeros(self._n)

    @property
    def gripper_target(self) -> float:
        """The gripper target (rad)."""
        return self._g_target

    def set_gripper_obstacle(self, position: float | None) -> None:
        """Put an object between the fingers: closing stops at `position` rad (None removes it)."""
        self._g_obstacle = None if position is None else float(position)

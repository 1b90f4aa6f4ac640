"""Teleoperation maths without ROS: twist -> joint targets, keyboard jog keys, button edges, gripper.

The teleop node turns an end-effector velocity (SpaceMouse, joystick or keyboard) into a one-point
JointTrajectory a short horizon ahead, 30 times a second. The pieces here decide *what* to command:

* :func:`shape_twist` applies deadband, scaling and the linear/angular speed limits (direction kept);
* :class:`TwistHold` makes a stale twist (device unplugged, node stopped) read as zero, so the arm
  holds instead of running away with the last command;
* :class:`ArmJogger` integrates the twist through damped-least-squares IK on a commanded reference,
  locking joints at their limits and capping joint speeds;
* :func:`key_twist` and :class:`ButtonEdges` map keyboard keys and Joy buttons to actions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evo1_ros.control.kinematics import SerialChain
from evo1_ros.control.limits import JointLimits
from evo1_ros.parameters import param, validate_fields

TWIST_FRAMES = ("base", "tool")


def shape_twist(
    raw: Sequence[float],
    *,
    linear_scale: float = 1.0,
    angular_scale: float = 1.0,
    deadband: float = 0.0,
    max_linear: float,
    max_angular: float,
) -> np.ndarray:
    """[vx, vy, vz, wx, wy, wz] after per-axis deadband, scaling and norm limits.

    The deadband applies to the raw device values (SpaceMouse noise around zero); the limits cap the
    norm of the linear and of the angular part separately, so the direction of motion is kept.
    Non-finite input is treated as zero (a broken device must not move the arm).
    """
    tw = np.asarray(raw, dtype=float).reshape(-1)
    if tw.shape != (6,):
        raise ValueError(f"twist needs 6 values, got {tw.shape}")
    tw = np.where(np.isfinite(tw), tw, 0.0)
    tw = np.where(np.abs(tw) < deadband, 0.0, tw)
    tw[:3] *= linear_scale
    tw[3:] *= angular_scale
    for part, cap in ((slice(0, 3), max_linear), (slice(3, 6), max_angular)):
        norm = float(np.linalg.norm(tw[part]))
        if norm > cap:
            tw[part] *= cap / norm if norm > 0 else 0.0
    return tw


def twist_to_base(twist: np.ndarray, tool_rotation: np.ndarray, frame: str) -> np.ndarray:
    """Express a twist given in ``frame`` ("base" or "tool") in the base frame."""
    if frame == "base":
        return np.asarray(twist, dtype=float)
    if frame == "tool":
        R = np.asarray(tool_rotation, dtype=float)
        return np.concatenate([R @ twist[:3], R @ twist[3:]])
    raise ValueError(f"twist frame must be one of {TWIST_FRAMES}, got {frame!r}")


class TwistHold:
    """The latest twist, which reads as zero once older than ``timeout`` seconds (thread-safe).

    The dead-man runs on a monotonic clock by default (``time.monotonic``): the ROS clock can jump
    (``use_sim_time`` with ``/clock`` restarting, an NTP step) and must never keep a twist alive. A
    twist that seems to come from the future (its time is after ``now``) means the clock went back:
    it reads as stale and ``clock_problem`` says so.
    """

    def __init__(self, timeout: float) -> None:
        if not timeout > 0:
            raise ValueError(f"twist timeout must be > 0, got {timeout}")
        self.timeout = float(timeout)
        self._lock = threading.Lock()
        self._twist = np.zeros(6)
        self._stamp: float | None = None
        self.clock_problem = False

    def set(self, twist: Sequence[float], now: float | None = None) -> None:
        """Store ``twist`` received at ``now`` (default: the monotonic clock)."""
        with self._lock:
            self._twist = np.asarray(twist, dtype=float).reshape(6).copy()
            self._stamp = time.monotonic() if now is None else float(now)

    def get(self, now: float | None = None) -> tuple[np.ndarray, bool]:
        """(twist, fresh): zeros and False when no twist came within the timeout (or the clock went back)."""
        t = time.monotonic() if now is None else float(now)
        with self._lock:
            if self._stamp is None:
                return np.zeros(6), False
            age = t - self._stamp
            self.clock_problem = age < 0
            if age < 0 or age > self.timeout:
                return np.zeros(6), False
            return self._twist.copy(), True


@dataclass(frozen=True)
class JogSettings:
    """How a twist becomes joint targets; each field is a teleop node parameter, declared here once."""

    max_linear: float = param(0.1, "m/s cap of the end-effector speed", min=0.001, max=1.0)
    max_angular: float = param(0.5, "rad/s cap of the end-effector angular speed", min=0.001, max=3.0)
    linear_scale: float = param(1.0, "input linear units -> m/s", min=0.0)
    angular_scale: float = param(1.0, "input angular units -> rad/s", min=0.0)
    deadband: float = param(0.02, "raw input values below this are zero (device noise)", min=0.0)
    rate: float = param(30.0, "Hz of the published commands", min=1.0, max=250.0)
    horizon: float = param(0.1, "s ahead of now the commanded point lies", min=0.01, max=1.0)
    damping: float = param(0.05, "DLS damping (higher: slower but steadier near singularities)", min=0.0)
    frame: str = param(
        "base",
        "frame of the input twist: base (link_base) or tool (gripper)",
        name="twist_frame",
        choices=list(TWIST_FRAMES),
    )
    resync_threshold: float = param(
        0.2, "rad; a reference this far from the arm is reset to the arm", min=0.01
    )

    def __post_init__(self) -> None:
        validate_fields(self)

    @property
    def period(self) -> float:
        """Seconds between commands (1 / rate): how far each step integrates the reference."""
        return 1.0 / self.rate


@dataclass(frozen=True)
class JogStep:
    """One command: positions to reach ``horizon`` s from now, the joint velocity, the twist used."""

    target: np.ndarray
    velocity: np.ndarray
    twist: np.ndarray


class ArmJogger:
    """Integrates end-effector twists into joint targets on a commanded reference.

    The reference starts at (and is re-synchronised to) the measured joints; every step moves it by
    ``dq * period`` where ``dq`` is the DLS joint velocity for the shaped twist, with joints that would
    leave their limits within the horizon locked and all joint speeds under ``limits.max_velocity``.
    The command is the reference plus ``dq * horizon``; a zero twist commands the reference: hold.
    """

    def __init__(self, chain: SerialChain, limits: JointLimits, settings: JogSettings) -> None:
        if tuple(limits.names) != tuple(chain.joint_names):
            raise ValueError(
                f"limits joints {limits.names} do not match the chain joints {chain.joint_names}"
            )
        self.chain = chain
        self.limits = limits
        self.settings = settings
        self.lower = np.maximum(chain.lower, limits.lower)
        self.upper = np.minimum(chain.upper, limits.upper)
        self.reference: np.ndarray | None = None

    def reset(self, measured: np.ndarray | None = None) -> None:
        """Forget the reference (e.g. after free-drive); the next step starts from ``measured``."""
        self.reference = (
            None if measured is None else np.clip(np.asarray(measured, float), self.lower, self.upper)
        )

    def step(self, raw_twist: Sequence[float], measured: np.ndarray | None) -> JogStep | None:
        """Next command for ``raw_twist`` (device units); None until joints were measured once."""
        s = self.settings
        if measured is not None:
            measured = np.asarray(measured, dtype=float)
            if self.reference is None or np.max(np.abs(self.reference - measured)) > s.resync_threshold:
                self.reference = np.clip(measured, self.lower, self.upper)
        if self.reference is None:
            return None
        q = self.reference
        tw = shape_twist(
            raw_twist,
            linear_scale=s.linear_scale,
            angular_scale=s.angular_scale,
            deadband=s.deadband,
            max_linear=s.max_linear,
            max_angular=s.max_angular,
        )
        if not np.any(tw):
            return JogStep(q.copy(), np.zeros_like(q), tw)
        tw_base = twist_to_base(tw, self.chain.fk(q)[:3, :3], s.frame)
        dq = self.chain.twist_to_joint_velocities(
            q, tw_base, s.horizon, max_velocity=self.limits.max_velocity, damping=s.damping
        )
        self.reference = np.clip(q + dq * s.period, self.lower, self.upper)
        target = np.clip(self.reference + dq * s.horizon, self.lower, self.upper)
        return JogStep(target, dq, tw_base)


class ButtonEdges:
    """Which Joy buttons went from released to pressed since the previous message.

    The first message only records the state: a button held while the node starts does not fire.
    """

    def __init__(self) -> None:
        self._prev: list[int] | None = None

    def update(self, buttons: Sequence[int]) -> set[int]:
        cur = [1 if b else 0 for b in buttons]
        prev = self._prev
        self._prev = cur
        if prev is None:
            return set()
        return {i for i, b in enumerate(cur) if b and (i >= len(prev) or not prev[i])}


class Gripper:
    """Open/closed toggle of the gripper joint (drive_joint: 0 = open, 0.85 = closed)."""

    def __init__(self, open_position: float, closed_position: float) -> None:
        self.open_position = float(open_position)
        self.closed_position = float(closed_position)
        self.target: float | None = None

    def sync(self, measured: float) -> None:
        """Take the measured position as the target until the operator toggles."""
        if self.target is None:
            self.target = float(measured)

    @property
    def closed(self) -> bool:
        mid = 0.5 * (self.open_position + self.closed_position)
        t = self.open_position if self.target is None else self.target
        return (t - mid) * (self.closed_position - self.open_position) > 0

    def toggle(self) -> float:
        self.target = self.open_position if self.closed else self.closed_position
        return self.target


# Keyboard jog: key -> (twist axis, sign). Axes 0-2 linear x/y/z, 3-5 angular about x/y/z (base frame).
JOG_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, +1.0),
    "s": (0, -1.0),  # forward / back (x)
    "a": (1, +1.0),
    "d": (1, -1.0),  # left / right (y)
    "r": (2, +1.0),
    "f": (2, -1.0),  # up / down (z)
    "u": (3, +1.0),
    "o": (3, -1.0),  # roll
    "i": (4, +1.0),
    "k": (4, -1.0),  # pitch
    "j": (5, +1.0),
    "l": (5, -1.0),  # yaw
}
# Keys that are not motions.
KEY_GRIPPER, KEY_STOP, KEY_FREE_DRIVE, KEY_QUIT = "g", " ", "m", "q"
KEYBOARD_HELP = (
    "w/s x, a/d y, r/f z, u/o roll, i/k pitch, j/l yaw, g gripper, m free-drive, space stop, q quit"
)


def key_twist(key: str, linear_speed: float, angular_speed: float) -> np.ndarray | None:
    """Twist for a jog key (None if the key is not a motion key)."""
    entry = JOG_KEYS.get(key.lower())
    if entry is None:
        return None
    axis, sign = entry
    tw = np.zeros(6)
    tw[axis] = sign * (linear_speed if axis < 3 else angular_speed)
    return tw

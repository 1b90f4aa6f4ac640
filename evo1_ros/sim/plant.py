"""The plant interface: what the loopback controller needs from whatever moves the joints.

The controller (protocol, state machine, faults) is independent of how motion is produced. Here the
plant is a kinematic velocity/acceleration-limited tracker (`TrackingPlant`); a physics simulation
(MuJoCo) can implement the same interface and be passed to `LoopbackController(plant=...)`.

Units: rad, rad/s, N·m, seconds. The gripper is the xarm_ros2 `drive_joint` (rad, 0 = open,
0.85 = closed); the controller converts to and from gripper pulses (pulses = 850 - 1000·rad).
All methods are called with the controller's lock held, from one thread at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class JointPlant(ABC):
    """Joint-space plant driven by the loopback controller."""

    @property
    @abstractmethod
    def n_joints(self) -> int:
        """Number of arm joints (6 for an xArm6)."""

    @abstractmethod
    def reset(self, q: Sequence[float], gripper: float | None = None) -> None:
        """Place the arm at `q` at rest (and the gripper at `gripper` rad if given), holding there."""

    @abstractmethod
    def set_position_target(
        self,
        q: Sequence[float],
        max_velocity: float | Sequence[float],
        max_acceleration: float | Sequence[float],
    ) -> None:
        """Move towards `q`, replanning from the current state, within the given per-joint limits."""

    @abstractmethod
    def set_velocity_target(self, dq: Sequence[float], max_acceleration: float | Sequence[float]) -> None:
        """Track joint velocities `dq` (ramped at most at `max_acceleration`)."""

    @abstractmethod
    def hold(self) -> None:
        """Decelerate to standstill as fast as allowed and hold the position where the arm stopped."""

    @abstractmethod
    def set_gripper_target(self, position: float, max_velocity: float) -> None:
        """Move the gripper drive joint towards `position` rad at most at `max_velocity` rad/s."""

    @abstractmethod
    def hold_gripper(self) -> None:
        """Stop the gripper where it is."""

    @abstractmethod
    def step(self, dt: float) -> None:
        """Advance the plant by `dt` seconds."""

    @property
    @abstractmethod
    def q(self) -> np.ndarray:
        """Measured joint positions (copy)."""

    @property
    @abstractmethod
    def dq(self) -> np.ndarray:
        """Measured joint velocities (copy)."""

    @property
    @abstractmethod
    def effort(self) -> np.ndarray:
        """Joint efforts / torques (copy)."""

    @property
    @abstractmethod
    def gripper_position(self) -> float:
        """Gripper drive joint position (rad)."""

    @property
    @abstractmethod
    def gripper_velocity(self) -> float:
        """Gripper drive joint velocity (rad/s)."""

    @abstractmethod
    def is_moving(self) -> bool:
        """True while the arm moves or has not yet reached its position target."""

    @abstractmethod
    def gripper_is_moving(self) -> bool:
        """True while the gripper moves towards its target."""

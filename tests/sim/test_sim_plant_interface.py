"""Any `JointPlant` can sit behind the controller (what a MuJoCo plant will do later)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from evo1_ros.polling import wait_until
from evo1_ros.sim.plant import JointPlant
from fixtures.xarm import bring_up


class TeleportPlant(JointPlant):
    """Reaches every target in one step: the simplest possible plant, with a call log."""

    def __init__(self) -> None:
        self._q = np.zeros(6)
        self._target = np.zeros(6)
        self._g = 0.0
        self._g_target = 0.0
        self.calls: list[str] = []

    @property
    def n_joints(self) -> int:
        return 6

    def reset(self, q: Sequence[float], gripper: float | None = None) -> None:
        self._q = np.asarray(q, dtype=float).copy()
        self._target = self._q.copy()
        if gripper is not None:
            self._g = self._g_target = gripper

    def set_position_target(self, q, max_velocity, max_acceleration) -> None:
        self.calls.append("position")
        self._target = np.asarray(q, dtype=float).copy()

    def set_velocity_target(self, dq, max_acceleration) -> None:
        self.calls.append("velocity")

    def hold(self) -> None:
        self.calls.append("hold")
        self._target = self._q.copy()

    def set_gripper_target(self, position: float, max_velocity: float) -> None:
        self.calls.append("gripper")
        self._g_target = position

    def hold_gripper(self) -> None:
        self._g_target = self._g

    def step(self, dt: float) -> None:
        self._q = self._target.copy()
        self._g = self._g_target

    @property
    def q(self) -> np.ndarray:
        return self._q.copy()

    @property
    def dq(self) -> np.ndarray:
        return np.zeros(6)

    @property
    def effort(self) -> np.ndarray:
        return np.zeros(6)

    @property
    def gripper_position(self) -> float:
        return self._g

    @property
    def gripper_velocity(self) -> float:
        return 0.0

    def is_moving(self) -> bool:
        return not np.allclose(self._q, self._target)

    def gripper_is_moving(self) -> bool:
        return self._g != self._g_target


def test_custom_plant_drives_the_reported_state(make_controller, connect) -> None:
    plant = TeleportPlant()
    ctrl = make_controller(plant=plant)
    assert ctrl.plant is plant
    arm = connect(ctrl.host)
    bring_up(arm, 1)
    assert arm.set_servo_angle_j([0.2, 0.1, 0, 0, 0, 0]) == 0
    assert wait_until(lambda: np.allclose(arm.angles[:6], [0.2, 0.1, 0, 0, 0, 0], atol=1e-5), 2.0)
    assert arm.set_gripper_enable(True) == 0
    assert arm.set_gripper_position(100, wait=False, wait_motion=False) == 0
    assert wait_until(lambda: arm.get_gripper_position() == (0, 100), 2.0)
    assert "position" in plant.calls and "gripper" in plant.calls and "hold" in plant.calls
    with pytest.raises(TypeError):
        ctrl.set_gripper_obstacle(10)  # a TrackingPlant-only feature
    assert ctrl.position_target is None

"""The MuJoCo plant: contact grasping in physics, and the real SDK moving it through the loopback controller."""

from __future__ import annotations

import numpy as np
import pytest

from evo1_ros.control.kinematics import SerialChain
from evo1_ros.polling import wait_until
from evo1_ros.sim.loopback_config import LoopbackConfig
from evo1_ros.sim.loopback_controller import LoopbackController
from evo1_ros.sim.mujoco_plant import MujocoPlant
from evo1_ros.sim.tasks import ObjectPose, yaw_quat
from evo1_ros.sim.workcell_scene import WorkcellModel
from fixtures.xarm import READY

GRASP_OFFSET = 0.13  # flange -> point between the finger pads (grasp_point site)


@pytest.fixture(scope="module")
def workcell() -> WorkcellModel:
    return WorkcellModel()


def _tool_down_ik(chain: SerialChain, xyz, q0) -> np.ndarray:
    target = np.eye(4)
    target[:3, :3] = np.diag([1.0, -1.0, -1.0])
    target[:3, 3] = np.asarray(xyz, dtype=float) + np.array([0.0, 0.0, GRASP_OFFSET])
    result = chain.ik(target, q0)
    assert result.success
    return result.q


def _run(plant: MujocoPlant, seconds: float, dt: float = 0.004) -> None:
    for _ in range(int(seconds / dt)):
        plant.step(dt)


def test_fingers_grasp_and_lift_a_can_by_contact(workcell):
    plant = MujocoPlant(workcell)
    chain = SerialChain.from_urdf()
    plant.reset(READY, 0.0)
    h = workcell.config.can_height
    plant.place_objects({"can_a": ObjectPose(np.array([0.40, 0.10, h / 2]), yaw_quat(0.4))})
    above = _tool_down_ik(chain, [0.40, 0.10, 0.22], READY)
    grasp = _tool_down_ik(chain, [0.40, 0.10, h - 0.03], above)
    for q in (above, grasp):
        plant.set_position_target(q, 1.0, 4.0)
        _run(plant, 1.5)
    assert np.allclose(plant.q, grasp, atol=2e-3)
    plant.set_gripper_target(0.85, 1.5)
    _run(plant, 1.0)
    state = plant.scene_state()
    assert state.finger_contacts == {"can_a"}
    assert 0.1 < plant.gripper_position < 0.5  # stalled on the can, far from closed (0.85)
    plant.set_position_target(above, 1.0, 4.0)
    _run(plant, 2.0)
    can = plant.scene_state().poses["can_a"]
    assert can.pos[2] > h / 2 + 0.08, "the can was not lifted"
    assert can.tilt_deg() < 10.0
    plant.set_gripper_target(0.0, 1.5)  # open: the can drops
    _run(plant, 1.0)
    assert plant.scene_state().poses["can_a"].pos[2] < h / 2 + 0.01


def test_position_servos_hold_against_gravity_and_report_torque(workcell):
    plant = MujocoPlant(workcell)
    plant.reset(READY, 0.0)
    _run(plant, 0.5)
    assert np.allclose(plant.q, READY, atol=1e-4)
    assert not plant.is_moving()
    target = READY + np.array([0.3, 0.2, -0.2, 0.3, -0.3, 0.5])
    plant.set_position_target(target, 1.0, 4.0)
    plant.step(0.1)
    assert plant.is_moving()
    assert np.any(np.abs(plant.effort) > 0.1)
    _run(plant, 1.5)
    assert np.allclose(plant.q, target, atol=2e-3)
    assert not plant.is_moving()


def test_physics_keeps_pace_with_the_controller_clock(workcell):
    plant = MujocoPlant(workcell, max_lag=0.02)
    plant.reset(READY, 0.0)
    t0 = plant.sim_time
    for dt in (0.004, 0.0041, 0.1, 0.003):  # 0.1 s: a scheduler stall, more than max_lag
        plant.step(dt)
    simulated = plant.sim_time - t0
    assert plant.dropped_time > 0.07
    assert abs(simulated + plant.dropped_time - 0.1111) < workcell.model.opt.timestep


def test_real_sdk_moves_the_simulated_arm_and_gripper(workcell, connect):
    config = LoopbackConfig(initial_joints=READY.tolist())
    plant = MujocoPlant(workcell, config.max_joint_speed, config.max_joint_acc)
    ctrl = LoopbackController(config=config, plant=plant).start()
    try:
        arm = connect(ctrl.host)
        assert wait_until(lambda: arm.connected, 5.0)
        assert wait_until(lambda: np.allclose(arm.angles[:6], READY, atol=1e-3), 5.0), arm.angles
        assert arm.clean_error() == 0 and arm.motion_enable(True) == 0
        assert arm.set_mode(0) == 0 and arm.set_state(0) == 0
        target = READY + np.array([0.4, 0.15, -0.2, 0.2, -0.2, 0.6])
        assert arm.set_servo_angle(angle=target.tolist(), speed=1.0, mvacc=5.0, wait=True, timeout=20) == 0
        assert wait_until(lambda: np.allclose(ctrl.q, target, atol=3e-3), 5.0), ctrl.q - target
        assert wait_until(lambda: np.allclose(arm.angles[:6], target, atol=5e-3), 5.0), arm.angles
        # servo mode: a streamed path is tracked closely by the physics
        assert arm.set_mode(1) == 0 and arm.set_state(0) == 0
        assert wait_until(lambda: arm.mode == 1 and arm.state in (1, 2), 5.0)
        errors = []
        for k in range(1, 41):
            q = target + np.array([0.0, 0.0, 0.0, 0.0, 0.0, -0.01 * k])
            assert arm.set_servo_angle_j(q.tolist(), is_radian=True) == 0
            wait_until(lambda: False, 0.02)
            errors.append(float(np.max(np.abs(ctrl.q - q))))
        assert max(errors) < 0.1
        assert wait_until(lambda: abs(ctrl.q[5] - (target[5] - 0.4)) < 3e-3, 5.0)
        # gripper pulses -> finger motion
        assert arm.set_gripper_enable(True) == 0
        assert arm.set_gripper_position(400, wait=True, timeout=10) == 0
        assert wait_until(lambda: abs(plant.gripper_position - 0.45) < 0.02, 5.0), plant.gripper_position
        assert abs(arm.get_gripper_position()[1] - 400) < 20
        assert ctrl.error_code == 0
    finally:
        ctrl.stop()

"""The real xArm SDK connects to the loopback controller and sees consistent state (docs/xarm_protocol.md §1, §5-§6, §8)."""

from __future__ import annotations

import numpy as np
import pytest

from evo1_ros.polling import wait_until
from evo1_ros.sim.loopback_config import LoopbackConfig
from evo1_ros.sim.xarm6_fk import tcp_pose
from fixtures.xarm import bring_up


def test_connect_reads_version_and_serial(controller, connect) -> None:
    arm = connect(controller.host)
    assert arm.connected
    assert arm.version == controller.config.version
    assert arm.version_number == (1, 12, 10)
    assert arm.axis == 6
    code, sn = arm.get_robot_sn()
    assert code == 0 and sn == controller.config.robot_sn
    assert arm.control_box_sn == controller.config.control_box_sn
    assert controller.command_client_count() == 1
    assert wait_until(lambda: controller.report_client_count("rich") == 1, 2.0)
    # the first report arrives: disabled arm, state 4, mode 0, no error
    assert wait_until(lambda: arm.motor_enable_states[:6] == [0] * 6, 2.0)
    assert arm.state == 4 and arm.mode == 0 and arm.error_code == 0


def test_bring_up_sequence_and_state_machine(controller, connect) -> None:
    arm = connect(controller.host)
    assert arm.clean_error() == 0
    assert arm.clean_warn() == 0
    assert arm.motion_enable(True) == 0
    assert controller.enabled and controller.state == 4
    assert arm.get_state() == (0, 4)
    assert arm.set_mode(1) == 0
    assert controller.mode == 1 and controller.state == 4  # still stopped until set_state(0)
    assert arm.set_state(0) == 0
    assert arm.get_state() == (0, 2)
    assert wait_until(lambda: arm.mode == 1 and arm.state == 2 and not arm.has_error, 2.0)
    assert arm.motor_enable_states[:6] == [1] * 6 and arm.motor_brake_states[:6] == [1] * 6
    # a mode change while ready gives state 5 ("mode changed") until set_state(0)
    assert arm.set_mode(6) == 0
    assert arm.get_state() == (0, 5)
    assert arm.set_servo_angle(angle=[0.1, 0, 0, 0, 0, 0], speed=1.0, mvacc=10.0) == 9  # not ready
    assert arm.set_state(0) == 0 and arm.get_state() == (0, 2)
    # stop, pause and disable
    assert arm.set_state(4) == 0 and controller.state == 4
    assert arm.set_state(0) == 0 and controller.state == 2
    assert arm.motion_enable(False) == 0
    assert not controller.enabled
    assert arm.set_state(0) == 0 and controller.state == 4  # cannot start while disabled
    assert wait_until(lambda: arm.state == 4 and arm.motor_enable_states[:6] == [0] * 6, 2.0)


def test_queries_and_settings(controller, connect) -> None:
    controller.set_joint_positions([0.1, -0.2, -0.3, 0.4, 0.5, -0.6])
    arm = connect(controller.host)
    code, angles = arm.get_servo_angle()
    assert code == 0
    assert np.allclose(angles[:6], [0.1, -0.2, -0.3, 0.4, 0.5, -0.6], atol=1e-5) and angles[6] == 0.0
    code, (pos, vel, eff) = arm.get_joint_states()
    assert code == 0 and len(pos) == len(vel) == len(eff) == 7
    assert np.allclose(pos[:6], angles[:6], atol=1e-5) and np.allclose(vel, 0.0)
    code, pose = arm.get_position()
    assert code == 0 and len(pose) == 6
    code, (err, warn) = arm.get_err_warn_code()
    assert code == 0 and err == 0 and warn == 0
    assert arm.get_cmdnum() == (0, 0)
    bring_up(arm, 0)
    assert arm.set_collision_sensitivity(5) == 0
    assert controller.collision_sensitivity == 5
    assert wait_until(lambda: arm.collision_sensitivity == 5 and arm.state == 2, 2.0)
    assert arm.set_tcp_offset([0, 0, 172, 0, 0, 0]) == 0
    assert arm.set_state(0) == 0
    code, pose_tcp = arm.get_position()
    assert code == 0
    assert np.isclose(np.linalg.norm(np.subtract(pose_tcp[:3], pose[:3])), 172.0, atol=0.01)


@pytest.mark.parametrize("report_type", ["real", "normal", "rich"])
def test_report_sockets_follow_the_arm(report_type: str, controller, connect) -> None:
    start = [0.3, 0.0, -0.2, 0.0, 0.4, 0.1]
    controller.set_joint_positions(start)
    arm = connect(controller.host, report_type=report_type)
    assert wait_until(lambda: controller.report_client_count(report_type) == 1, 2.0)
    assert wait_until(lambda: np.allclose(arm.angles[:6], start, atol=1e-5), 2.0)
    bring_up(arm, 1)  # state and mode arrive through this report type
    target = [0.32, 0.02, -0.2, 0.0, 0.4, 0.1]
    assert arm.set_servo_angle_j(target) == 0
    assert wait_until(lambda: np.allclose(arm.angles[:6], target, atol=1e-5), 2.0)
    pose, _ = tcp_pose(target)
    assert wait_until(lambda: np.allclose(arm.position[:3], pose[:3], atol=1e-2), 2.0)


def test_report_rate_and_counter(make_controller, connect) -> None:
    config = LoopbackConfig()
    config.report_rates_hz["rich"] = 20.0
    ctrl = make_controller(config)
    arm = connect(ctrl.host)
    assert wait_until(lambda: arm.count > 3, 3.0)
    seen = arm.count
    assert wait_until(lambda: arm.count > seen, 2.0)

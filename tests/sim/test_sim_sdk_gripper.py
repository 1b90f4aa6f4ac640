"""The xArm Gripper over the tool RS-485 port (register 124) through the real SDK."""

from __future__ import annotations

import threading
import time

from evo1_ros.polling import wait_until
from evo1_ros.sim.loopback_config import LoopbackConfig
from fixtures.xarm import bring_up


def test_gripper_set_and_get(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 1)
    assert arm.get_gripper_position() == (0, 850)
    assert arm.set_gripper_mode(0) == 0
    assert arm.set_gripper_enable(True) == 0
    assert arm.set_gripper_speed(5000) == 0
    assert controller.gripper_enabled and controller.gripper_speed_rpm == 5000
    # streaming style: no waiting
    assert arm.set_gripper_position(300, wait=False, wait_motion=False) == 0
    assert controller.gripper_target_pulses == 300
    assert wait_until(lambda: arm.get_gripper_position() == (0, 300), 3.0)
    assert controller.gripper_pulses == 300
    # blocking style: the SDK polls the status register until the gripper stops
    assert arm.set_gripper_position(700, wait=True, wait_motion=False) == 0
    assert controller.gripper_pulses == 700
    assert arm.get_gripper_status() == (0, 0)
    code, version = arm.get_gripper_version()
    assert code == 0 and version == "3.4.3"
    assert arm.get_gripper_err_code() == (0, 0)
    assert controller.counters()["gripper_frames"] > 10


def test_disabled_gripper_does_not_move(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 1)
    assert arm.set_gripper_enable(False) == 0
    assert arm.set_gripper_position(100, wait=False, wait_motion=False) == 0
    assert not wait_until(lambda: controller.gripper_pulses != 850, 0.3)


def test_gripper_grasp_status_and_fault(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 1)
    assert arm.set_gripper_enable(True) == 0
    assert arm.set_gripper_speed(5000) == 0
    controller.set_gripper_obstacle(420)  # an object 420 pulses wide between the fingers
    assert arm.set_gripper_position(0, wait=True, wait_motion=False) == 0
    assert arm.get_gripper_position() == (0, 420)
    assert arm.get_gripper_status() == (0, 2)  # stopped on an object
    controller.inject_gripper_error(9)
    assert arm.get_gripper_err_code() == (0, 9)
    assert arm.set_gripper_position(800, wait=False, wait_motion=False) == 102  # end-effector fault
    assert arm.clean_gripper_error() == 0
    assert arm.set_gripper_enable(True) == 0
    controller.set_gripper_obstacle(None)
    assert arm.set_gripper_position(800, wait=True, wait_motion=False) == 0
    assert controller.gripper_pulses == 800


def test_tool_baud_rate_check_fixes_a_wrong_baud(make_controller, connect) -> None:
    config = LoopbackConfig()
    config.gripper.tool_baud_index = 9  # 1 Mbit/s: the gripper does not answer
    ctrl = make_controller(config)
    arm = connect(ctrl.host, baud_checkset=False)
    assert arm.get_gripper_position()[0] != 0  # nobody answers on the tool bus
    arm.disconnect()
    arm = connect(ctrl.host)  # baud_checkset=True (default): reads 9, writes 11, reboots the tool
    assert arm.get_gripper_position() == (0, 850)
    assert ctrl.tool_baud_index == 11
    assert ctrl.core.gripper.reboots == 1


def test_tool_bus_delay_blocks_only_the_asking_connection(make_controller, connect) -> None:
    """A slow tool RS-485 bus delays gripper replies on the connection that asked; a second client
    connection keeps getting servo_j answers meanwhile (and the controller counts them)."""
    config = LoopbackConfig()
    config.faults.tool_bus_delay_s = 0.3
    ctrl = make_controller(config)
    arm = connect(ctrl.host)
    tool = connect(ctrl.host, enable_report=False)
    bring_up(arm, 1)
    start = time.monotonic()
    assert tool.get_gripper_position() == (0, 850)  # baud check + read: several delayed exchanges
    assert time.monotonic() - start >= 0.3
    assert ctrl.counters()["servoj_during_tool_bus"] == 0
    reader = threading.Thread(target=lambda: [tool.get_gripper_position() for _ in range(5)])
    reader.start()
    q = [0.0] * 6
    while reader.is_alive():
        assert arm.set_servo_angle_j(q, is_radian=True) == 0
    reader.join()
    assert ctrl.counters()["servoj_during_tool_bus"] > 0
    ctrl.set_tool_bus_delay(0.0)
    assert ctrl.counters()["servoj_received"] >= ctrl.counters()["servoj_during_tool_bus"]

"""Fault injection seen through the real SDK, and the recovery sequence of docs/xarm_protocol.md §1:
clean_error -> motion_enable -> set_mode -> set_state(0)."""

from __future__ import annotations

import time

import numpy as np

from evo1_ros.polling import wait_until
from fixtures.xarm import bring_up


def recover(arm, mode: int) -> None:
    """The documented recovery sequence; every call must succeed."""
    assert arm.clean_error() == 0
    assert arm.motion_enable(True) == 0
    assert arm.set_mode(mode) == 0
    assert arm.set_state(0) == 0
    assert wait_until(lambda: arm.error_code == 0 and arm.mode == mode and arm.state in (1, 2), 3.0)


def test_c24_overspeed_servo_jump_and_recovery(controller, connect) -> None:
    errors: list[dict] = []
    arm = connect(controller.host)
    arm.register_error_warn_changed_callback(errors.append)
    bring_up(arm, 1)
    assert arm.set_servo_angle_j([0.05, 0, 0, 0, 0, 0]) == 0
    # 1 rad in one servo step: implied 10 rad/s at the 0.1 s reference period > π rad/s
    assert arm.set_servo_angle_j([1.0, 0, 0, 0, 0, 0]) == 1
    assert controller.error_code == 24 and controller.state == 4 and controller.mode == 0
    assert arm.set_servo_angle_j([0.06, 0, 0, 0, 0, 0]) == 1  # still refused: error present
    assert wait_until(lambda: arm.error_code == 24 and arm.state == 4 and arm.mode == 0, 2.0)
    assert any(item["error_code"] == 24 for item in errors)
    assert arm.get_err_warn_code()[1][0] == 24
    assert controller.counters()["servoj_overspeed"] == 1
    assert wait_until(lambda: not np.any(controller.dq), 2.0)
    assert controller.q[0] < 0.2  # stopped, never went towards the jump target
    recover(arm, 1)
    assert arm.set_servo_angle_j([controller.q[0] + 0.01, 0, 0, 0, 0, 0]) == 0
    assert controller.error_code == 0


def test_c31_collision_stops_the_arm_and_recovery(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 6)
    assert arm.set_servo_angle(angle=[1.5, 0, 0, 0, 0, 0], speed=0.5, mvacc=5.0, wait=False) == 0
    assert wait_until(lambda: controller.q[0] > 0.1, 2.0)
    assert controller.inject_collision()
    assert wait_until(lambda: arm.error_code == 31 and arm.state == 4 and arm.mode == 0, 2.0)
    assert wait_until(lambda: not np.any(controller.dq), 2.0)
    stopped_at = controller.q[0]
    assert stopped_at < 1.0
    assert arm.set_servo_angle(angle=[1.5, 0, 0, 0, 0, 0], speed=0.5, mvacc=5.0, wait=False) == 1
    assert controller.q[0] == stopped_at
    recover(arm, 6)
    assert arm.set_servo_angle(angle=[0, 0, 0, 0, 0, 0], speed=1.0, mvacc=10.0, wait=False) == 0
    assert wait_until(lambda: np.allclose(controller.q, 0.0, atol=1e-6), 4.0)


def test_collision_detection_off_ignores_collisions(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 1)
    assert arm.set_collision_sensitivity(0) == 0
    assert not controller.inject_collision()
    assert controller.error_code == 0
    assert arm.set_collision_sensitivity(3) == 0
    assert controller.inject_collision()
    assert controller.error_code == 31


def test_c23_joint_limit_when_the_sdk_does_not_check(controller, connect) -> None:
    arm = connect(controller.host, check_joint_limit=False)
    bring_up(arm, 1)
    controller.set_joint_positions([0, 0, 0.15, 0, 0, 0])
    assert arm.set_servo_angle_j([0, 0, 0.25, 0, 0, 0]) == 1  # J3 upper limit is 0.191986 rad
    assert controller.error_code == 23
    strict = connect(controller.host)  # the SDK's own pre-check refuses without sending
    before = controller.counters()["servoj_received"]
    assert strict.set_servo_angle_j([0, 0, 0.25, 0, 0, 0]) == -8
    assert controller.counters()["servoj_received"] == before


def test_dropped_connection_is_detected_and_reconnect_works(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 1)
    assert arm.set_servo_angle_j([0.05, 0, 0, 0, 0, 0]) == 0
    controller.drop_connections()
    assert wait_until(lambda: not arm.connected, 5.0)
    assert arm.set_servo_angle_j([0.06, 0, 0, 0, 0, 0]) == -1  # not connected
    assert controller.command_client_count() == 0
    arm.connect()
    assert arm.connected
    assert wait_until(lambda: arm.state == 2 and arm.mode == 1, 3.0)  # the controller kept its state
    assert arm.set_servo_angle_j([0.07, 0, 0, 0, 0, 0]) == 0
    assert wait_until(lambda: np.isclose(controller.q[0], 0.07, atol=1e-6), 2.0)
    assert controller.drops == 1


def test_slow_replies_time_out_and_recover(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 1)
    controller.set_reply_delay(0.1)  # slow but within the SDK timeout: still works
    assert arm.get_state() == (0, 2)
    assert arm.set_servo_angle_j([0.02, 0, 0, 0, 0, 0]) == 0
    arm.set_timeout(0.2)
    controller.set_reply_delay(0.6)  # slower than the SDK's timeout: code 3
    assert arm.get_state()[0] == 3
    controller.set_reply_delay(0.0)
    arm.set_timeout(2.0)
    time.sleep(0.7)  # the stale reply arrives late and must be discarded by transaction id
    assert arm.get_state() == (0, 2)
    code, angles = arm.get_servo_angle()
    assert code == 0 and np.isclose(angles[0], 0.02, atol=1e-5)


def test_scheduled_faults_from_config(make_controller, connect) -> None:
    from evo1_ros.sim.loopback_config import LoopbackConfig

    config = LoopbackConfig()
    config.faults.collision_after_s = 0.5
    config.faults.drop_connections_after_s = 1.0
    ctrl = make_controller(config)
    arm = connect(ctrl.host)
    assert wait_until(lambda: arm.error_code == 31, 3.0)
    assert wait_until(lambda: not arm.connected, 5.0)
    assert ctrl.drops == 1


def test_inject_any_error_and_introspection(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 6)
    before = controller.register_count(13)  # GET_STATE
    assert arm.get_state() == (0, 2)
    assert controller.register_count(13) == before + 1
    assert arm.set_servo_angle(angle=[0.5, 0, 0, 0, 0, 0], speed=1.0, mvacc=5.0, wait=False) == 0
    assert wait_until(lambda: abs(controller.effort[0]) > 0.0, 2.0)  # accelerating joint 1
    controller.inject_error(25)
    assert wait_until(lambda: controller.error_code == 25 and controller.state == 4, 1.0)
    assert wait_until(lambda: arm.error_code == 25, 2.0)
    recover(arm, 6)

"""Motion through the real SDK: servo_j streaming (mode 1), online planning (mode 6), queued moves
(mode 0), joint velocity (mode 4) and free drive (mode 2)."""

from __future__ import annotations

import time

import numpy as np

from evo1_ros.polling import wait_until
from fixtures.xarm import bring_up


def test_servo_streaming_reaches_target(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 1)
    target = np.array([0.4, -0.3, -0.5, 0.2, 0.3, -0.4])
    steps = 60
    for i in range(1, steps + 1):  # a smooth ramp, 100 Hz nominal
        assert arm.set_servo_angle_j((target * i / steps).tolist()) == 0
        time.sleep(0.01)
    assert wait_until(lambda: np.allclose(controller.q, target, atol=1e-6), 3.0)
    counters = controller.counters()
    assert counters["servoj_received"] == steps and counters["servoj_accepted"] == steps
    assert np.allclose(controller.servo_target, target)
    assert wait_until(lambda: np.allclose(arm.angles[:6], target, atol=1e-5) and arm.state == 2, 3.0)
    code, angles = arm.get_servo_angle()
    assert code == 0 and np.allclose(angles[:6], target, atol=1e-5)


def test_servo_j_outside_servo_mode_or_before_ready_is_not_executed(controller, connect) -> None:
    arm = connect(controller.host)
    assert arm.set_servo_angle_j([0.1, 0, 0, 0, 0, 0]) == 9  # not enabled: state not ready
    bring_up(arm, 0)
    assert arm.set_servo_angle_j([0.1, 0, 0, 0, 0, 0]) == 0  # accepted on the wire, ignored in mode 0
    assert wait_until(lambda: controller.counters()["servoj_ignored"] == 2, 2.0)
    assert np.allclose(controller.q, 0.0)


def test_servo_tracking_is_speed_limited(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 1)
    # 0.3 rad jump: implied 3 rad/s at the 0.1 s reference period, just under the C24 limit (π)
    assert arm.set_servo_angle_j([0.3, 0, 0, 0, 0, 0]) == 0
    peak = 0.0
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and not np.isclose(controller.q[0], 0.3, atol=1e-6):
        peak = max(peak, float(np.max(np.abs(controller.dq))))
        time.sleep(0.002)
    assert np.isclose(controller.q[0], 0.3, atol=1e-6)
    assert peak <= controller.config.max_joint_speed + 1e-9
    assert controller.error_code == 0


def test_mode6_online_replanning(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 6)
    assert arm.set_servo_angle(angle=[1.0, 0, 0, 0, 0, 0], speed=0.5, mvacc=5.0, wait=False) == 0
    assert wait_until(lambda: arm.state == 1, 2.0)  # moving
    assert wait_until(lambda: controller.q[0] > 0.1, 2.0)
    assert controller.q[0] < 0.9  # 0.5 rad/s cap: nowhere near the first target yet
    # a new target replaces the running one; speed stays within the new cap
    new_target = [-0.2, 0.1, -0.1, 0, 0.2, 0]
    assert arm.set_servo_angle(angle=new_target, speed=1.0, mvacc=10.0, wait=False) == 0
    assert np.max(np.abs(controller.dq)) <= 1.0 + 1e-9
    assert wait_until(lambda: np.allclose(controller.q, new_target, atol=1e-6), 4.0)
    assert wait_until(lambda: arm.state == 2, 2.0)
    assert controller.counters()["move_joint_accepted"] == 2


def test_mode0_queued_moves_with_wait(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 0)
    first = [0.2, -0.1, -0.2, 0.0, 0.1, 0.0]
    second = [-0.1, 0.1, -0.3, 0.2, 0.0, 0.1]
    assert arm.set_servo_angle(angle=first, speed=2.0, mvacc=20.0, wait=False) == 0
    assert arm.set_servo_angle(angle=second, speed=2.0, mvacc=20.0, wait=False) == 0
    assert controller.cmdnum >= 1
    assert arm.set_servo_angle(angle=[0, 0, 0, 0, 0, 0], speed=2.0, mvacc=20.0, wait=True) == 0
    assert np.allclose(controller.q, 0.0, atol=1e-6)
    assert controller.cmdnum == 0
    assert controller.counters()["move_joint_accepted"] == 3
    assert arm.move_gohome(wait=True) == 0


def test_mode0_pause_and_resume(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 0)
    assert arm.set_servo_angle(angle=[0.6, 0, 0, 0, 0, 0], speed=0.4, mvacc=5.0, wait=False) == 0
    assert wait_until(lambda: controller.q[0] > 0.1, 2.0)
    assert arm.set_state(3) == 0
    assert wait_until(lambda: not np.any(controller.dq), 1.0)
    paused_at = controller.q[0]
    time.sleep(0.1)
    assert controller.q[0] == paused_at and controller.state == 3
    assert arm.set_state(0) == 0
    assert wait_until(lambda: np.isclose(controller.q[0], 0.6, atol=1e-6), 4.0)


def test_joint_velocity_mode_with_duration(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 4)
    assert arm.vc_set_joint_velocity([0.2, 0, 0, 0, -0.1, 0], duration=0.5) == 0
    assert wait_until(lambda: np.isclose(controller.dq[0], 0.2), 1.0)
    assert np.allclose(controller.velocity_command, [0.2, 0, 0, 0, -0.1, 0])
    # the duration acts as a watchdog: the arm stops by itself
    assert wait_until(lambda: not np.any(controller.dq) and controller.state == 2, 3.0)
    assert np.allclose(controller.velocity_command, 0.0)
    travelled = controller.q
    assert 0.05 < travelled[0] < 0.2 and travelled[4] < 0
    # no duration: runs until told otherwise
    assert arm.vc_set_joint_velocity([0, 0.1, 0, 0, 0, 0]) == 0
    assert wait_until(lambda: np.isclose(controller.dq[1], 0.1), 2.0)
    assert arm.vc_set_joint_velocity([0] * 6) == 0
    assert wait_until(lambda: not np.any(controller.dq), 2.0)


def test_free_drive_mode(controller, connect) -> None:
    arm = connect(controller.host)
    assert not controller.guide_to([0.1, 0, 0, 0, 0, 0])  # not in mode 2
    bring_up(arm, 2)
    assert arm.set_servo_angle_j([0.2, 0, 0, 0, 0, 0]) == 0  # commands do not move a free-driven arm
    assert controller.guide_to([0.05, 0.1, 0, 0, 0, 0])
    assert wait_until(lambda: np.allclose(arm.angles[:6], [0.05, 0.1, 0, 0, 0, 0], atol=1e-5), 3.0)


def test_decelerated_stop_and_emergency_stop(controller, connect) -> None:
    arm = connect(controller.host)
    bring_up(arm, 6)
    assert arm.set_servo_angle(angle=[1.0, 0, 0, 0, 0, 0], speed=1.0, mvacc=2.0, wait=False) == 0
    assert wait_until(lambda: controller.dq[0] > 0.5, 2.0)
    assert arm.set_state(6) == 0  # decelerate: 1 rad/s at 20 rad/s² takes 50 ms
    assert wait_until(lambda: controller.state == 4 and not np.any(controller.dq), 2.0)
    assert controller.q[0] < 0.9
    assert arm.set_state(0) == 0
    assert arm.set_servo_angle(angle=[0.0] * 6, speed=1.0, mvacc=10.0, wait=False) == 0
    assert wait_until(lambda: controller.dq[0] < -0.2, 2.0)
    arm.emergency_stop()  # set_state(4) until the report says 4
    assert controller.state == 4 and arm.state == 4
    assert wait_until(lambda: not np.any(controller.dq), 2.0)
    assert controller.error_code == 0  # a stop is not an error

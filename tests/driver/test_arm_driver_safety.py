"""ArmDriver safety semantics (issue 13 items 1-6) against the loopback controller, real SDK, no ROS.

Each test drives the real `ArmDriver` over the real xArm SDK (the `make_driver` / `ready` rig of
tests/driver/conftest.py, with both streamers); the loopback controller plays the arm and the
operator (hand guiding, dropped cables, a slow tool bus, an object in the gripper).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from evo1_ros.driver.arm_driver import ARM_JOINTS, ArmDriver, DriverState, NotReadyError
from evo1_ros.polling import wait_until
from evo1_ros.sim.loopback_config import LoopbackConfig

ARM = list(ARM_JOINTS)
VCAP, ACAP = 1.0, 4.0  # max_velocity / max_acceleration of config/xarm6_limits.yaml for joint1..6


def move_joint1(driver: ArmDriver, goal: float, seconds: float) -> None:
    driver.submit(ARM, [seconds], [[goal, 0, 0, 0, 0, 0]], None, None)


def drop_and_wait_reconnect(controller, driver: ArmDriver) -> None:
    done = driver.status().reconnects
    controller.drop_connections()
    assert wait_until(lambda: driver.status().reconnects > done, 15), driver.status()


# -- item 1: a reconnect restores the operator's choice -------------------------------------------
def test_reconnect_after_disable_stays_disabled(controller, ready) -> None:
    ready.disable()
    assert not controller.enabled
    drop_and_wait_reconnect(controller, ready)
    assert ready.state == DriverState.DISABLED, ready.status()
    assert not controller.enabled  # nobody re-enabled the motors
    with pytest.raises(NotReadyError):
        move_joint1(ready, 0.3, 1.0)
    ready.enable()  # the operator's explicit enable still works
    assert ready.state == DriverState.READY


def test_reconnect_in_free_drive_stays_in_free_drive(controller, ready) -> None:
    ready.free_drive(True)
    assert controller.mode == 2
    drop_and_wait_reconnect(controller, ready)
    assert ready.state == DriverState.FREE_DRIVE, ready.status()
    assert controller.mode == 2  # still compliant in the operator's hands, not stiff mode 1
    assert controller.guide_to([0.1, 0, 0, 0, 0, 0])


def test_reconnect_while_ready_resumes_streaming(controller, ready) -> None:
    drop_and_wait_reconnect(controller, ready)
    assert ready.state == DriverState.READY, ready.status()
    move_joint1(ready, 0.1, 0.5)
    assert wait_until(lambda: abs(controller.q[0] - 0.1) < 2e-3, 8)


# -- item 2: stop latches ---------------------------------------------------------------------------
def test_stop_latches_until_resume(controller, ready) -> None:
    move_joint1(ready, 1.5, 3.0)
    assert wait_until(lambda: controller.q[0] > 0.2, 5)
    ready.stop()
    st = ready.status()
    assert st.stop_latched and st.state == DriverState.READY
    rejected = st.trajectories_rejected
    for _ in range(5):  # teleop keeps publishing: every one is refused and counted
        with pytest.raises(NotReadyError, match="resume"):
            move_joint1(ready, 1.5, 1.0)
    with pytest.raises(NotReadyError):
        ready.home()
    st = ready.status()
    assert st.trajectories_rejected == rejected + 6 and "resume" in st.last_rejection
    assert wait_until(lambda: not ready.status().moving, 3)
    held = controller.q.copy()
    assert held[0] < 1.0
    ready.resume()
    assert not ready.status().stop_latched
    move_joint1(ready, 0.1, 1.0)
    assert wait_until(lambda: abs(controller.q[0] - 0.1) < 2e-3, 8)


def test_enable_also_releases_the_stop_latch(controller, ready) -> None:
    ready.stop()
    with pytest.raises(NotReadyError):
        move_joint1(ready, 0.1, 1.0)
    ready.enable()
    move_joint1(ready, 0.1, 1.0)
    assert wait_until(lambda: abs(controller.q[0] - 0.1) < 2e-3, 8)


# -- item 3: gripper traffic never waits in front of a servo command ----------------------------------
def test_gripper_traffic_runs_beside_the_servo_stream(make_controller, make_driver) -> None:
    """With a slow tool bus, servo commands keep flowing while gripper requests are in progress (on
    one shared SDK connection they cannot: the SDK serialises calls, so the count stays 0)."""
    config = LoopbackConfig()
    config.faults.tool_bus_delay_s = 0.05
    ctrl = make_controller(config)
    driver = make_driver(ctrl)
    assert wait_until(lambda: driver.state == DriverState.READY, 20), driver.status()
    t = np.linspace(0.5, 6.0, 12)
    driver.submit(
        [*ARM, "drive_joint"],
        t.tolist(),
        [[0.3 * np.sin(k), 0, 0, 0, 0, 0, 0.4 + 0.4 * np.sin(2 * k)] for k in t],
        None,
        None,
    )
    assert wait_until(lambda: ctrl.counters()["servoj_during_tool_bus"] >= 50, 20), ctrl.counters()
    assert ctrl.counters()["gripper_frames"] > 0 and driver.state == DriverState.READY


def test_gripper_position_is_polled_at_its_own_period(make_controller, make_driver) -> None:
    ctrl = make_controller()
    driver = make_driver(ctrl, gripper_poll_period=0.5)
    assert wait_until(lambda: driver.state == DriverState.READY and driver.status().gripper_polls >= 2, 20)
    # A lower bound (a loaded machine only makes it longer): 3 more reads take >= 3 poll periods,
    # and the controller saw no more RS-485 traffic than those reads (the gripper holds; the SDK's
    # get_gripper_position takes up to 2 frames).
    polls = driver.status().gripper_polls
    assert wait_until(lambda: driver.status().gripper_polls > polls, 5)
    start, first, frames = time.monotonic(), driver.status().gripper_polls, ctrl.counters()["gripper_frames"]
    assert wait_until(lambda: driver.status().gripper_polls >= first + 3, 10)
    assert time.monotonic() - start >= 3 * 0.5 - 0.05
    assert ctrl.counters()["gripper_frames"] - frames <= 2 * (driver.status().gripper_polls - first + 1)


# -- item 4: an arm outside the configured limits is not snapped into them --------------------------
def test_start_outside_the_limits_refuses_ready(controller, make_driver) -> None:
    controller.set_joint_positions([0.0, 2.08, 0.0, 0.0, 0.0, 0.0])  # joint2 upper limit 2.0246
    driver = make_driver(controller)
    assert wait_until(lambda: "joint2" in driver.status().fault or driver.state == DriverState.READY, 15)
    st = driver.status()
    assert st.state == DriverState.DISABLED and "outside" in st.fault, st
    with pytest.raises(NotReadyError, match="joint2"):
        driver.enable()
    assert controller.counters()["servoj_received"] == 0  # nothing was streamed
    assert np.allclose(controller.q, [0.0, 2.08, 0, 0, 0, 0])
    # hand-guide it back inside, leave free-drive: streaming starts from there
    driver.free_drive(True)
    assert controller.guide_to([0.0, 1.9, 0.0, 0.0, 0.0, 0.0])
    # the guided arm must have come to rest: leaving free-drive re-syncs from the pose at that instant
    assert wait_until(lambda: abs(controller.q[1] - 1.9) < 1e-7, 10), controller.q
    driver.free_drive(False)
    assert driver.state == DriverState.READY
    assert np.allclose(driver.commanded_positions()[:6], controller.q, atol=1e-6)


# -- item 5: re-syncs keep the commanded grasp ------------------------------------------------------
def test_resync_keeps_the_commanded_gripper_target(controller, ready) -> None:
    controller.set_gripper_obstacle(300)  # an object: the fingers stall at 300 pulses
    ready.submit(["drive_joint"], [0.3], [[0.85]], None, None)  # close fully (0 pulses)
    assert wait_until(
        lambda: abs(controller.gripper_pulses - 300) <= 2 and controller.gripper_target_pulses <= 1, 8
    )
    # the command itself has arrived (each action below first brakes a moving command where it is)
    assert wait_until(lambda: ready.commanded_positions()[6] == pytest.approx(0.85), 5)
    for action in ("free_drive", "reconnect", "disable/enable"):
        if action == "free_drive":
            ready.free_drive(True)
            ready.free_drive(False)
        elif action == "reconnect":
            drop_and_wait_reconnect(controller, ready)
        else:
            ready.disable()
            ready.enable()
        assert ready.state == DriverState.READY, (action, ready.status())
        assert ready.commanded_positions()[6] == pytest.approx(0.85), action
        frames = controller.counters()["gripper_frames"]
        assert wait_until(lambda f=frames: controller.counters()["gripper_frames"] > f + 2, 5)
        assert controller.gripper_target_pulses <= 1, action  # the grasp was never loosened
    assert abs(controller.gripper_pulses - 300) <= 2


# -- item 6: leaving the stream brakes to rest first -------------------------------------------------
@pytest.mark.parametrize("action", ["disable", "free_drive", "shutdown"])
def test_stream_brakes_to_rest_before_it_ends(controller, ready, action) -> None:
    log: list[tuple[float, float]] = []
    ready.add_command_listener(lambda now, dt, cmd: log.append((dt, float(cmd[0]))))
    move_joint1(ready, 1.5, 1.6)
    assert wait_until(lambda: len(log) > 2 and (log[-1][1] - log[-2][1]) / log[-1][0] > 0.5 * VCAP, 5)
    {"disable": ready.disable, "free_drive": lambda: ready.free_drive(True), "shutdown": ready.shutdown}[
        action
    ]()
    entries = list(log)
    dt = np.array([e[0] for e in entries[1:]])
    q = np.array([e[1] for e in entries])
    v = np.diff(q) / dt
    assert abs(v[-1]) <= ACAP * dt[-1] + 1e-9, v[-5:]  # the last command is (almost) at rest ...
    assert np.max(np.abs(np.diff(v)) / dt[1:]) <= ACAP + 1e-6  # ... reached within the braking cap
    assert controller.servo_target is None or abs(controller.servo_target[0] - q[-1]) < 1e-6, (
        controller.servo_target,
        q[-5:],
        v[-5:],
    )
    assert q[-1] < 1.5  # it stopped short of the goal: a real stop, not the end of the trajectory

"""ArmDriver behaviour against the loopback controller through the real xArm SDK, no ROS.

Trajectories end at their last point, a replacement mid-way stays within the caps, a stalled
streaming thread slows the command instead of jumping it, a disable racing a servo command is no
fault, mode 6 reaches its target, malformed trajectories are rejected without motion, stop holds and
a controller fault waits for clear_error, a dropped connection comes back without motion, and
home / disable / enable / free-drive do what they say. The rig (`make_driver`, `ready`, both
streamers) is tests/driver/conftest.py; the node tests (tests/nodes/xarm_driver/) only check that
ROS reaches these calls. The safety semantics of issue 13 are in test_arm_driver_safety.py.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from evo1_ros.control.trajectory import (
    DUPLICATE_JOINT,
    NON_INCREASING_TIME,
    NOT_FINITE,
    POSITION_LIMIT,
    SHAPE_MISMATCH,
    UNKNOWN_JOINT,
    VELOCITY_LIMIT,
    TrajectoryError,
)
from evo1_ros.driver.arm_driver import ARM_JOINTS, ArmDriver, DriverState, NotReadyError
from evo1_ros.polling import wait_until

ARM = list(ARM_JOINTS)
ALL = [*ARM, "drive_joint"]
VCAP, ACAP = 1.0, 4.0  # max_velocity / max_acceleration of config/xarm6_limits.yaml for joint1..6
PERIOD = 1.0 / 200.0  # servo_rate


def wait_settled(controller, timeout: float = 5.0) -> np.ndarray:
    """Wait until the arm stops moving (two reads 0.2 s apart agree) and return where it is."""
    last = [controller.q.copy()]

    def still() -> bool:
        time.sleep(0.2)
        now = controller.q.copy()
        done = np.allclose(now, last[0], atol=1e-9)
        last[0] = now
        return done

    assert wait_until(still, timeout)
    return last[0]


def move_arm(driver: ArmDriver, goal, seconds: float) -> None:
    driver.submit(ARM, [seconds], [list(goal)], None, None)


def test_trajectory_ends_at_last_point(controller, ready) -> None:
    goal = np.array([0.4, -0.3, -0.5, 0.2, 0.6, -0.4, 0.5])
    ready.submit(ALL, [0.5, 1.2], [(goal * 0.5).tolist(), goal.tolist()], None, None)
    assert wait_until(lambda: np.allclose(controller.q, goal[:6], atol=2e-3), 8), controller.q
    assert np.allclose(wait_settled(controller), goal[:6], atol=1e-3)
    # the command stream itself ends exactly on the last point, gripper included
    assert wait_until(lambda: np.allclose(ready.commanded_positions(), goal, atol=1e-9), 5)
    assert wait_until(lambda: abs(controller.gripper_pulses - (850 - 1000 * goal[6])) <= 3, 5)  # 350 pulses
    # what joint_states publishes: the measured pose of joint1..6 + drive_joint (gripper read back)
    assert ready.joint_names == tuple(ALL)

    def measured_at_goal() -> bool:
        state = ready.joint_state()
        return state is not None and np.allclose(state[0], goal, atol=2e-3)

    assert wait_until(measured_at_goal, 5), ready.joint_state()
    q, dq = ready.joint_state()
    assert q.shape == dq.shape == (7,)
    assert ready.status().trajectories_accepted == 1 and ready.state == DriverState.READY


def test_replacement_midway_is_smooth(controller, ready) -> None:
    log: list[tuple[float, float, np.ndarray]] = []
    ready.add_command_listener(lambda now, dt, cmd: log.append((now, dt, cmd.copy())))
    move_arm(ready, [0.8, 0, 0, 0, 0, 0], 1.0)
    assert wait_until(lambda: controller.q[0] > 0.3, 5)  # moving towards +0.8 at up to 1 rad/s
    move_arm(ready, [-0.6, 0, 0, 0, 0, 0], 1.5)  # reverses joint1 mid-way
    assert wait_until(lambda: abs(controller.q[0] + 0.6) < 2e-3, 8)
    # The command stream the driver sent, with the cycle time each step was computed for: every
    # step is within the velocity cap and every velocity change within the acceleration cap, across
    # the replacement, so the reversal decelerated through zero instead of jumping.
    entries = list(log)  # the streamer keeps appending
    dt = np.array([entry[1] for entry in entries[1:]])
    q = np.array([entry[2][0] for entry in entries])
    v = np.diff(q) / dt
    assert len(v) > 200
    assert np.max(np.abs(v)) <= VCAP + 1e-9, np.max(np.abs(v))
    assert np.max(np.abs(np.diff(v)) / dt[1:]) <= ACAP + 1e-6
    # it did move both ways at speed (the streamer may time-scale a trajectory to keep the caps, so
    # the peak need not reach the cap)
    assert v.max() > 0.5 and v.min() < -0.5
    # Once the arm rests, the controller's target is what the driver last commanded.
    wait_settled(controller)
    assert wait_until(
        lambda: np.allclose(controller.servo_target, ready.commanded_positions()[:6], atol=1e-9), 2
    )


@pytest.mark.parametrize("streamer", ["thread"])  # the process's stall: test_streamer_process.py (SIGSTOP)
def test_stalled_servo_thread_slows_the_command_instead_of_jumping(controller, ready) -> None:
    """A starved streaming thread (GC, a loaded PC) must not turn into one big servo step: on a real
    xArm that is a C24 over-speed fault, or a lurch. Stall the thread once for 0.6 s mid-motion."""
    log: list[tuple[float, float, float]] = []
    stalled: list[bool] = []

    def listener(now: float, dt: float, cmd: np.ndarray) -> None:
        log.append((now, dt, float(cmd[0])))
        if not stalled and cmd[0] > 0.1:
            stalled.append(True)
            time.sleep(0.6)  # inside the servo cycle: the next cycle is 0.6 s late

    ready.add_command_listener(listener)
    move_arm(ready, [0.8, 0, 0, 0, 0, 0], 1.5)
    assert wait_until(lambda: abs(controller.q[0] - 0.8) < 2e-3, 10), ready.status()
    st = ready.status()
    assert st.state == DriverState.READY and controller.error_code == 0, st
    assert st.late_cycles >= 1
    entries = list(log)  # the streaming thread keeps appending
    now = np.array([e[0] for e in entries])
    q = np.array([e[2] for e in entries])
    assert np.max(np.diff(now)) >= 0.55  # the stall happened
    # every step within the velocity cap applied over at most max_step_periods (2) periods
    assert np.max(np.abs(np.diff(q))) <= VCAP * 2 * PERIOD + 1e-9, np.max(np.abs(np.diff(q)))


@pytest.mark.parametrize("streamer", ["thread"])  # in-cycle listener; the process pauses (confirmed) first
def test_disable_while_a_servo_command_is_in_flight_is_not_a_fault(controller, ready) -> None:
    """disable() racing the streaming thread: the command it already decided to send is refused by
    the now disabled controller (code 9). That is the disable taking effect, not a fault."""
    fired: list[bool] = []

    def listener(now: float, dt: float, cmd: np.ndarray) -> None:
        if not fired and cmd[0] > 0.05:
            fired.append(True)
            ready.disable()  # between the stream's READY check and its send of this command

    ready.add_command_listener(listener)
    failures = ready.status().send_failures
    move_arm(ready, [0.5, 0, 0, 0, 0, 0], 1.0)
    assert wait_until(lambda: fired and ready.status().send_failures > failures, 5), ready.status()
    time.sleep(0.2)
    st = ready.status()
    assert st.state == DriverState.DISABLED and not controller.enabled and not st.fault, st


# mode 6 always streams from the in-process thread; "process" is the configured default it overrides
@pytest.mark.parametrize("streamer", ["process"])
def test_online_mode_reaches_target(controller, make_driver) -> None:
    driver = make_driver(controller, gripper=False, control_mode="online")
    assert wait_until(lambda: driver.state == DriverState.READY, 15), driver.status()
    assert controller.mode == 6 and driver.streamer_pid is None
    goal = [0.3, 0.2, -0.2, 0.0, 0.3, 0.0]
    move_arm(driver, goal, 1.0)
    assert wait_until(lambda: np.allclose(controller.q, goal, atol=2e-3), 8), controller.q
    assert driver.joint_names == tuple(ARM)


# kind: (joint_names, times, positions, velocities, TrajectoryError.reason)
MALFORMED = {
    "unknown joint": ([*ARM[:5], "joint7"], [1.0], [[0.1] * 6], None, UNKNOWN_JOINT),
    "duplicate joint": ([*ARM[:5], "joint1"], [1.0], [[0.1] * 6], None, DUPLICATE_JOINT),
    "NaN": (ARM, [1.0], [[0.1, math.nan, 0, 0, 0, 0]], None, NOT_FINITE),
    "inf": (ARM, [1.0], [[0.1, 0, math.inf, 0, 0, 0]], None, NOT_FINITE),
    "non-increasing time": (ARM, [1.0, 1.0], [[0.1] * 6, [0.2] * 6], None, NON_INCREASING_TIME),
    "decreasing time": (ARM, [1.0, 0.5], [[0.1] * 6, [0.2] * 6], None, NON_INCREASING_TIME),
    "outside limits": (ARM, [1.0], [[0.1, 0, 1.5, 0, 0, 0]], None, POSITION_LIMIT),  # joint3 upper 0.17
    "gripper outside limits": (["drive_joint"], [1.0], [[1.2]], None, POSITION_LIMIT),
    "too few positions": (ARM, [1.0], [[0.1] * 5], None, SHAPE_MISMATCH),
    "velocity too high": (ARM, [1.0], [[0.1] * 6], [[5.0] * 6], VELOCITY_LIMIT),
    "velocities for some points only": (
        ARM,
        [0.5, 1.0],
        [[0.1] * 6, [0.2] * 6],
        [[0.0] * 6, []],
        SHAPE_MISMATCH,
    ),
}


def test_malformed_trajectories_rejected_without_motion(controller, ready) -> None:
    before = controller.q.copy()
    target_before = controller.servo_target
    commanded_before = ready.commanded_positions().copy()
    accepted: list[object] = []
    ready.add_trajectory_listener(lambda traj, start: accepted.append(traj))
    for n, (kind, (names, times, positions, velocities, reason)) in enumerate(MALFORMED.items(), start=1):
        with pytest.raises(TrajectoryError) as exc:
            ready.submit(names, times, positions, velocities, None)
        assert exc.value.reason == reason, (kind, exc.value)
        st = ready.status()
        assert st.trajectories_rejected == n and st.last_rejection == str(exc.value), (kind, st)
    time.sleep(0.3)
    assert np.array_equal(controller.q, before)
    if target_before is not None:
        assert np.allclose(controller.servo_target, target_before)
    assert np.array_equal(ready.commanded_positions(), commanded_before)
    st = ready.status()
    assert st.state == DriverState.READY and st.trajectories_accepted == 0 and not accepted, st
    # a rejection changes nothing: the next good trajectory runs
    move_arm(ready, [0.1, 0, 0, 0, 0, 0], 0.5)
    assert wait_until(lambda: abs(controller.q[0] - 0.1) < 2e-3, 8)


def test_stop_holds_and_fault_waits_for_clear_error(controller, ready) -> None:
    move_arm(ready, [1.5, 0, 0, 0, 0, 0], 3.0)
    assert wait_until(lambda: controller.q[0] > 0.2, 5)
    ready.stop()
    held = wait_settled(controller)  # braking at 4 rad/s^2 from <= 1 rad/s takes <= 0.25 s
    assert held[0] < 1.0  # stopped short of the goal

    controller.inject_collision()
    assert wait_until(lambda: ready.state == DriverState.FAULT, 5)
    assert "C31" in ready.status().fault
    with pytest.raises(NotReadyError):  # refused while faulted (and stop-latched)
        move_arm(ready, [0.0] * 6, 1.0)
    time.sleep(0.5)
    assert np.allclose(controller.q, held, atol=1e-6)
    with pytest.raises(NotReadyError, match="clear_error"):  # enable does not skip clear_error ...
        ready.enable()  # ... and, refused, it does not release the stop latch either
    assert ready.state == DriverState.FAULT

    ready.clear_error()
    assert ready.state == DriverState.READY and controller.error_code == 0
    assert np.allclose(controller.q, held, atol=1e-6)  # recovery does not move the arm
    with pytest.raises(NotReadyError, match="resume"):  # the stop still holds after the recovery
        move_arm(ready, [0.1, 0, 0, 0, 0, 0], 1.0)
    ready.resume()
    move_arm(ready, [0.1, 0, 0, 0, 0, 0], 1.0)
    assert wait_until(lambda: abs(controller.q[0] - 0.1) < 2e-3, 8)


def test_reconnect_after_drop_without_moving(controller, ready) -> None:
    move_arm(ready, [0.2, 0.1, 0, 0, 0, 0], 0.5)
    assert wait_until(lambda: np.allclose(controller.q[:2], [0.2, 0.1], atol=2e-3), 6)
    held = wait_settled(controller)
    reconnects = ready.status().reconnects
    controller.drop_connections()
    assert wait_until(lambda: ready.state != DriverState.READY, 5)
    assert wait_until(lambda: ready.state == DriverState.READY, 15), ready.status()
    assert ready.status().reconnects == reconnects + 1
    time.sleep(0.3)
    assert np.allclose(controller.q, held, atol=1e-6)
    assert controller.servo_target is None or np.allclose(controller.servo_target, held, atol=1e-6)
    assert np.allclose(ready.commanded_positions()[:6], held, atol=1e-6)  # re-synced from the measured pose


def test_home_disable_enable_and_free_drive(controller, ready) -> None:
    move_arm(ready, [0.3, 0, 0, 0, 0.2, 0], 0.6)
    assert wait_until(lambda: abs(controller.q[0] - 0.3) < 2e-3, 6)
    ready.home()
    assert wait_until(lambda: np.allclose(controller.q, 0.0, atol=2e-3), 8)  # home_position: all zero
    ready.disable()
    assert not controller.enabled and ready.state == DriverState.DISABLED
    with pytest.raises(NotReadyError):
        ready.home()
    ready.enable()
    assert controller.enabled and ready.state == DriverState.READY
    ready.free_drive(True)
    assert controller.mode == 2 and ready.state == DriverState.FREE_DRIVE
    guided = [0.1, 0.1, -0.1, 0, 0, 0]
    controller.guide_to(guided)  # the operator moves the arm by hand
    assert wait_until(lambda: np.allclose(controller.q, guided, atol=2e-3), 8)
    with pytest.raises(NotReadyError, match="FREE_DRIVE"):  # arm commands are refused in free-drive ...
        move_arm(ready, [0.0] * 6, 1.0)
    ready.submit(["drive_joint"], [0.2], [[0.6]], None, None)  # ... the gripper still obeys
    assert wait_until(lambda: abs(controller.gripper_pulses - 250) <= 3, 8), controller.gripper_pulses
    assert np.allclose(controller.q, guided, atol=2e-3)
    ready.free_drive(False)
    assert controller.mode == 1 and ready.state == DriverState.READY
    time.sleep(0.3)  # streaming resumes from where the hand left the arm: no jump back
    assert np.allclose(controller.q, guided, atol=2e-3)
    assert np.allclose(ready.commanded_positions()[:6], controller.q, atol=2e-3)

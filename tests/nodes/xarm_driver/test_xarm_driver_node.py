"""xarm_driver over ROS against the loopback controller, through the real xArm SDK."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from fixtures.waiting import wait_until
from fixtures.ros import Collector, call
from fixtures.xarm import joint_vector, trajectory
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from evo1_ros.driver.arm_driver import DriverState

ARM = [f"joint{i}" for i in range(1, 7)]
ALL = [*ARM, "drive_joint"]
CAP = 1.0  # max_velocity of config/xarm6_limits.yaml (rad/s)


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


@pytest.fixture
def io(ros, driver_node):
    node = ros.node("driver_test_client")
    pub = node.create_publisher(JointTrajectory, "/xarm/joint_trajectory", 10)
    states = Collector(node, JointState, "/xarm/joint_states")
    status = Collector(node, DiagnosticStatus, "/xarm/driver_status")
    assert states.wait(5, timeout=10)
    assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
    return node, pub, states, status


def test_trajectory_ends_at_last_point(io, controller, driver_node):
    _node, pub, states, _ = io
    goal = np.array([0.4, -0.3, -0.5, 0.2, 0.6, -0.4, 0.5])
    pub.publish(trajectory(ALL, [(0.5, goal * 0.5), (1.2, goal)]))
    reached = lambda: np.allclose(joint_vector(states.last(), ALL), goal, atol=2e-3)  # noqa: E731
    assert wait_until(reached, 8), joint_vector(states.last(), ALL)
    assert np.allclose(wait_settled(controller), goal[:6], atol=1e-3)
    assert abs(controller.gripper_pulses - (850 - 1000 * goal[6])) <= 3  # drive_joint 0.5 rad -> 350 pulses
    msg = states.last()
    assert list(msg.name) == ALL and len(msg.velocity) == 7


def test_replacement_midway_is_smooth(io, controller, driver_node):
    _, pub, _, _ = io
    log: list[tuple[float, float, np.ndarray]] = []
    driver_node.driver.add_command_listener(lambda now, dt, cmd: log.append((now, dt, cmd.copy())))
    pub.publish(trajectory(ARM, [(1.0, [0.8, 0, 0, 0, 0, 0])]))
    assert wait_until(lambda: controller.q[0] > 0.3, 5)  # moving towards +0.8 at up to 1 rad/s
    pub.publish(trajectory(ARM, [(1.5, [-0.6, 0, 0, 0, 0, 0])]))  # reverses joint1 mid-way
    assert wait_until(lambda: abs(controller.q[0] + 0.6) < 2e-3, 8)
    # The command stream the driver sent, with the cycle time each step was computed for: every
    # step is within the velocity cap and every velocity change within the acceleration cap (4
    # rad/s^2), across the replacement, so the reversal decelerated through zero instead of jumping.
    entries = list(log)  # the streaming thread keeps appending
    dt = np.array([entry[1] for entry in entries[1:]])
    q = np.array([entry[2][0] for entry in entries])
    v = np.diff(q) / dt
    assert len(v) > 200
    assert np.max(np.abs(v)) <= CAP + 1e-9, np.max(np.abs(v))
    assert np.max(np.abs(np.diff(v)) / dt[1:]) <= 4.0 + 1e-6
    # it did move both ways at speed (the streamer may time-scale a trajectory to keep the caps, so
    # the peak need not reach the cap)
    assert v.max() > 0.5 and v.min() < -0.5
    # Once the arm rests, the controller's target is what the driver last commanded.
    wait_settled(controller)
    assert wait_until(
        lambda: np.allclose(controller.servo_target, driver_node.driver.commanded_positions()[:6], atol=1e-9),
        2,
    )


@pytest.mark.streamer("thread")  # the process streamer's stall: test_streamer_process.py (SIGSTOP)
def test_stalled_servo_thread_slows_the_command_instead_of_jumping(io, controller, driver_node):
    """A starved streaming thread (GC, a loaded PC) must not turn into one big servo step: on a real
    xArm that is a C24 over-speed fault, or a lurch. Stall the thread once for 0.6 s mid-motion."""
    _, pub, _, status = io
    log: list[tuple[float, float, float]] = []
    stalled: list[bool] = []

    def listener(now: float, dt: float, cmd: np.ndarray) -> None:
        log.append((now, dt, float(cmd[0])))
        if not stalled and cmd[0] > 0.1:
            stalled.append(True)
            time.sleep(0.6)  # inside the servo cycle: the next cycle is 0.6 s late

    driver_node.driver.add_command_listener(listener)
    pub.publish(trajectory(ARM, [(1.5, [0.8, 0, 0, 0, 0, 0])]))
    assert wait_until(lambda: abs(controller.q[0] - 0.8) < 2e-3, 10), driver_node.driver.status()
    st = driver_node.driver.status()
    assert st.state == DriverState.READY and controller.error_code == 0, st
    assert st.late_cycles >= 1
    entries = list(log)  # the streaming thread keeps appending
    now = np.array([e[0] for e in entries])
    q = np.array([e[2] for e in entries])
    assert np.max(np.diff(now)) >= 0.55  # the stall happened
    # every step within the velocity cap applied over at most max_step_periods (2) periods of 5 ms
    assert np.max(np.abs(np.diff(q))) <= CAP * 2 * 0.005 + 1e-9, np.max(np.abs(np.diff(q)))
    assert wait_until(
        lambda: (
            status.last() is not None
            and int({kv.key: kv.value for kv in status.last().values}["late_cycles"]) >= 1
        ),
        5,
    )


@pytest.mark.streamer("thread")  # in-cycle listener; the process pauses (confirmed) before disabling
def test_disable_while_a_servo_command_is_in_flight_is_not_a_fault(io, controller, driver_node):
    """disable() racing the streaming thread: the command it already decided to send is refused by
    the now disabled controller (code 9). That is the disable taking effect, not a fault."""
    _, pub, _, _ = io
    driver = driver_node.driver
    fired: list[bool] = []

    def listener(now: float, dt: float, cmd: np.ndarray) -> None:
        if not fired and cmd[0] > 0.05:
            fired.append(True)
            driver.disable()  # between the stream's READY check and its send of this command

    driver.add_command_listener(listener)
    failures = driver.status().send_failures
    pub.publish(trajectory(ARM, [(1.0, [0.5, 0, 0, 0, 0, 0])]))
    assert wait_until(lambda: fired and driver.status().send_failures > failures, 5), driver.status()
    time.sleep(0.2)
    assert driver.state == DriverState.DISABLED and not controller.enabled, driver.status()


@pytest.mark.parametrize("control_mode", ["online"])
def test_online_mode_reaches_target(ros, controller, control_mode):
    from rclpy.parameter import Parameter

    from evo1_ros.nodes.xarm_driver import XArmDriverNode

    node = ros.add(
        XArmDriverNode(
            context=ros.context,
            namespace="/xarm",
            parameter_overrides=[
                Parameter("robot_ip", value=controller.host),
                Parameter("control_mode", value=control_mode),
                Parameter("gripper", value=False),
            ],
        )
    )
    assert wait_until(lambda: node.driver.state == DriverState.READY, 15)
    assert controller.mode == 6
    goal = [0.3, 0.2, -0.2, 0.0, 0.3, 0.0]
    node.driver.submit(ARM, [1.0], [goal], None, None)
    assert wait_until(lambda: np.allclose(controller.q, goal, atol=2e-3), 8), controller.q


MALFORMED = {
    "unknown joint": trajectory([*ARM[:5], "joint7"], [(1.0, [0.1] * 6)]),
    "duplicate joint": trajectory([*ARM[:5], "joint1"], [(1.0, [0.1] * 6)]),
    "NaN": trajectory(ARM, [(1.0, [0.1, math.nan, 0, 0, 0, 0])]),
    "inf": trajectory(ARM, [(1.0, [0.1, 0, math.inf, 0, 0, 0])]),
    "non-increasing time": trajectory(ARM, [(1.0, [0.1] * 6), (1.0, [0.2] * 6)]),
    "decreasing time": trajectory(ARM, [(1.0, [0.1] * 6), (0.5, [0.2] * 6)]),
    "outside limits": trajectory(ARM, [(1.0, [0.1, 0, 1.5, 0, 0, 0])]),  # joint3 upper 0.17
    "gripper outside limits": trajectory(["drive_joint"], [(1.0, [1.2])]),
    "too few positions": trajectory(ARM, [(1.0, [0.1] * 5)]),
    "velocity too high": trajectory(ARM, [(1.0, [0.1] * 6)], velocities=[[5.0] * 6]),
    "velocities for some points only": trajectory(ARM, [(0.5, [0.1] * 6), (1.0, [0.2] * 6)]),
}
MALFORMED["velocities for some points only"].points[0].velocities = [0.0] * 6


def test_malformed_trajectories_rejected_without_motion(io, controller, driver_node):
    _node, pub, _states, status = io
    before = controller.q.copy()
    target_before = controller.servo_target
    for kind, msg in MALFORMED.items():
        rejected = driver_node.driver.status().trajectories_rejected
        pub.publish(msg)
        assert wait_until(lambda n=rejected + 1: driver_node.driver.status().trajectories_rejected == n, 5), (
            kind
        )
    time.sleep(0.3)
    assert np.array_equal(controller.q, before)
    if target_before is not None:
        assert np.allclose(controller.servo_target, target_before)
    assert driver_node.driver.state == DriverState.READY
    assert driver_node.driver.status().trajectories_accepted == 0
    # The rejections reach the status topic with the last reason.
    assert wait_until(
        lambda: any(
            kv.key == "trajectories_rejected" and kv.value == str(len(MALFORMED))
            for kv in status.last().values
        ),
        5,
    )


def test_stop_holds_and_fault_waits_for_clear_error(io, controller, driver_node):
    node, pub, _states, status = io
    pub.publish(trajectory(ARM, [(3.0, [1.5, 0, 0, 0, 0, 0])]))
    assert wait_until(lambda: controller.q[0] > 0.2, 5)
    assert call(node, Trigger, "/xarm/stop").success
    held = wait_settled(controller)  # braking at 4 rad/s^2 from <= 1 rad/s takes <= 0.25 s
    assert held[0] < 1.0  # stopped short of the goal

    controller.inject_collision()
    assert wait_until(lambda: driver_node.driver.state == DriverState.FAULT, 5)
    assert "C31" in driver_node.driver.status().fault
    assert wait_until(
        lambda: status.last().level == DiagnosticStatus.ERROR and "C31" in status.last().message, 5
    )
    pub.publish(trajectory(ARM, [(1.0, [0.0] * 6)]))  # refused while faulted
    time.sleep(0.5)
    assert np.allclose(controller.q, held, atol=1e-6)
    assert not call(node, Trigger, "/xarm/enable").success  # enable does not skip clear_error

    response = call(node, Trigger, "/xarm/clear_error")
    assert response.success, response.message
    assert driver_node.driver.state == DriverState.READY and controller.error_code == 0
    assert np.allclose(controller.q, held, atol=1e-6)  # recovery does not move the arm
    pub.publish(trajectory(ARM, [(1.0, [0.1, 0, 0, 0, 0, 0])]))
    assert wait_until(lambda: abs(controller.q[0] - 0.1) < 2e-3, 8)


def test_reconnect_after_drop_without_moving(io, controller, driver_node):
    _node, pub, _states, _ = io
    pub.publish(trajectory(ARM, [(0.5, [0.2, 0.1, 0, 0, 0, 0])]))
    assert wait_until(lambda: np.allclose(controller.q[:2], [0.2, 0.1], atol=2e-3), 6)
    held = wait_settled(controller)
    controller.drop_connections()
    assert wait_until(lambda: driver_node.driver.state != DriverState.READY, 5)
    assert wait_until(lambda: driver_node.driver.state == DriverState.READY, 15)
    time.sleep(0.3)
    assert np.allclose(controller.q, held, atol=1e-6)
    assert controller.servo_target is None or np.allclose(controller.servo_target, held, atol=1e-6)


def test_home_disable_enable_and_free_drive(io, controller, driver_node):
    node, pub, _states, _ = io
    pub.publish(trajectory(ARM, [(0.6, [0.3, 0, 0, 0, 0.2, 0])]))
    assert wait_until(lambda: abs(controller.q[0] - 0.3) < 2e-3, 6)
    assert call(node, Trigger, "/xarm/home").success
    assert wait_until(lambda: np.allclose(controller.q, 0.0, atol=2e-3), 8)
    assert call(node, Trigger, "/xarm/disable").success
    assert not controller.enabled and driver_node.driver.state == DriverState.DISABLED
    assert call(node, Trigger, "/xarm/enable").success and controller.enabled
    on = call(node, SetBool, "/xarm/free_drive", SetBool.Request(data=True))
    assert on.success and controller.mode == 2
    controller.guide_to([0.1, 0.1, -0.1, 0, 0, 0])  # the operator moves the arm by hand
    assert wait_until(lambda: np.allclose(controller.q, [0.1, 0.1, -0.1, 0, 0, 0], atol=2e-3), 8)
    pub.publish(trajectory(ARM, [(1.0, [0.0] * 6)]))  # arm commands are refused in free-drive ...
    pub.publish(trajectory(["drive_joint"], [(0.2, [0.6])]))  # ... the gripper still obeys
    assert wait_until(lambda: abs(controller.gripper_pulses - 250) <= 3, 8), controller.gripper_pulses
    assert np.allclose(controller.q, [0.1, 0.1, -0.1, 0, 0, 0], atol=2e-3)
    off = call(node, SetBool, "/xarm/free_drive", SetBool.Request(data=False))
    assert off.success and controller.mode == 1
    time.sleep(0.3)  # streaming resumes from where the hand left the arm: no jump back
    assert np.allclose(controller.q, [0.1, 0.1, -0.1, 0, 0, 0], atol=2e-3)

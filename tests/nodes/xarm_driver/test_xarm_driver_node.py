"""xarm_driver's ROS wiring against the loopback controller, through the real xArm SDK.

Only what ROS adds is checked here: a `joint_trajectory` message reaches `ArmDriver.submit` (points,
velocities, time_from_start converted; a zero stamp starts now), malformed messages are answered by
a rejection in `driver_status` without motion, each Trigger/SetBool service calls its driver method
and answers success/message, `joint_states` (names, rate, drive_joint) and `driver_status` /
`/diagnostics` (keys, levels) report the driver. What the driver does with those calls is tested
without ROS in tests/driver/ (test_arm_driver.py, test_arm_driver_safety.py); stamps vs the node
clock, the stop latch in driver_status and `accepted_trajectory` are in
test_xarm_driver_node_safety.py.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from evo1_ros.control.limits import JointLimits
from evo1_ros.control.trajectory import validate
from evo1_ros.driver.arm_driver import DriverState, DriverStatus
from evo1_ros.driver.error_codes import error_text, warn_text
from evo1_ros.polling import wait_until
from fixtures.ros import Collector, call
from fixtures.xarm import joint_vector, start_driver_node, status_values, trajectory

ARM = [f"joint{i}" for i in range(1, 7)]
ALL = [*ARM, "drive_joint"]


@pytest.fixture
def io(ros, driver_node):
    node = ros.node("driver_test_client")
    pub = node.create_publisher(JointTrajectory, "/xarm/joint_trajectory", 10)
    states = Collector(node, JointState, "/xarm/joint_states")
    status = Collector(node, DiagnosticStatus, "/xarm/driver_status")
    assert states.wait(5, timeout=10)
    assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
    return node, pub, states, status


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def test_joint_trajectory_reaches_the_driver_and_joint_states_report_the_arm(io, controller, driver_node):
    """Message → submit: joint order, points, velocities, fractional time_from_start; a zero stamp
    starts now. joint_states: joint1..6 + drive_joint, at joint_state_rate, what the arm measures."""
    _node, pub, states, _ = io
    driver = driver_node.driver
    got: list[tuple[object, float, float]] = []
    driver.add_trajectory_listener(lambda traj, start: got.append((traj, start, time.monotonic())))
    goal = [0.4, -0.3, -0.5, 0.2, 0.6, -0.4, 0.5]
    names = ["drive_joint", *reversed(ARM)]  # any order in
    order = [6, 5, 4, 3, 2, 1, 0]  # goal (robot order) -> message order
    sent = trajectory(
        names,
        [(0.55, [goal[i] * 0.5 for i in order]), (1.2, [goal[i] for i in order])],
        velocities=[[0.3 if i == 6 else 0.2 for i in order], [0.0] * 7],
    )
    pub.publish(sent)
    assert wait_until(lambda: len(got) == 1, 5), driver.status()
    traj, start, called = got[0]
    expected = validate(
        names,
        [0.55, 1.2],
        [list(p.positions) for p in sent.points],
        JointLimits.from_yaml(),
        [list(p.velocities) for p in sent.points],
    )
    assert traj.joint_names == tuple(ALL)
    np.testing.assert_allclose(traj.times, [0.55, 1.2], atol=1e-9)
    np.testing.assert_allclose(traj.positions, expected.positions, atol=1e-12)
    np.testing.assert_allclose(traj.velocities, expected.velocities, atol=1e-12)
    assert abs(called - start) < 0.1  # zero stamp: starts when it arrives

    reached = lambda: np.allclose(joint_vector(states.last(), ALL), goal, atol=2e-3)  # noqa: E731
    assert wait_until(reached, 8), joint_vector(states.last(), ALL)
    assert abs(controller.gripper_pulses - 350) <= 3  # drive_joint 0.5 rad -> 350 pulses
    msgs = states.snapshot()[-50:]
    assert all(list(m.name) == ALL and len(m.position) == len(m.velocity) == 7 for m in msgs)
    # joint_state_rate 100 Hz: the node stamps each message with its clock when it publishes
    stamps = np.array([stamp_seconds(m.header.stamp) for m in msgs])
    assert 0.007 < float(np.median(np.diff(stamps))) < 0.014, np.diff(stamps)
    assert np.allclose(joint_vector(states.last(), ARM), controller.q, atol=1e-3)


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


def test_malformed_messages_are_rejected_in_driver_status_without_motion(io, controller, driver_node):
    _node, pub, _states, status = io
    driver = driver_node.driver
    before = controller.q.copy()
    target_before = controller.servo_target
    for kind, msg in MALFORMED.items():
        rejected = driver.status().trajectories_rejected
        pub.publish(msg)
        assert wait_until(lambda n=rejected + 1: driver.status().trajectories_rejected == n, 5), kind
    # the one the node itself refuses (the driver only sees whole velocity arrays)
    assert driver.status().last_rejection == "velocities given for some points only"
    time.sleep(0.3)
    assert np.array_equal(controller.q, before)
    if target_before is not None:
        assert np.allclose(controller.servo_target, target_before)
    assert driver.state == DriverState.READY
    assert driver.status().trajectories_accepted == 0
    # The rejections reach the status topic with the last reason.
    assert wait_until(
        lambda: (
            status.last() is not None
            and status_values(status.last())["trajectories_rejected"] == str(len(MALFORMED))
            and status_values(status.last())["last_rejection"] == "velocities given for some points only"
        ),
        5,
    )


def test_each_service_calls_its_driver_method_and_answers(ros, controller):
    """Trigger: enable, disable, clear_error, stop, resume, home; SetBool: free_drive. A refused call
    answers success=False with the driver's reason; driver_status' level follows the state."""
    home = [0.2, 0.0, 0.0, 0.0, 0.0, 0.0]  # home_position reaches the driver's home()
    driver_node = start_driver_node(
        ros, controller.host, timeout=15, status_rate=10.0, reconnect_period=0.3, home_position=home
    )
    driver = driver_node.driver
    node = ros.node("driver_service_client")
    status = Collector(node, DiagnosticStatus, "/xarm/driver_status")

    def level_is(level: int, text: str = "") -> bool:
        msg = status.last()
        return msg is not None and msg.level == level and text in msg.message

    def trigger(name: str, data: bool | None = None):
        if data is None:
            return call(node, Trigger, f"/xarm/{name}")
        return call(node, SetBool, f"/xarm/{name}", SetBool.Request(data=data))

    assert wait_until(lambda: level_is(DiagnosticStatus.OK, "READY"), 10)
    response = trigger("home")
    assert response.success and response.message == "home: driver READY", response.message
    assert wait_until(lambda: np.allclose(controller.q, home, atol=2e-3), 8), controller.q
    assert trigger("stop").success and driver.status().stop_latched
    response = trigger("home")  # refused while stop-latched: the reason comes back
    assert (
        not response.success and response.message.startswith("home failed:") and "resume" in response.message
    )
    assert trigger("resume").success and not driver.status().stop_latched

    response = trigger("disable")
    assert response.success and response.message == "disable: driver DISABLED", response.message
    assert not controller.enabled and driver.state == DriverState.DISABLED
    assert wait_until(lambda: level_is(DiagnosticStatus.WARN, "DISABLED"), 5)
    assert trigger("enable").success and controller.enabled and driver.state == DriverState.READY

    response = trigger("free_drive", True)
    assert response.success and response.message == "free_drive: driver FREE_DRIVE", response.message
    assert controller.mode == 2 and driver.state == DriverState.FREE_DRIVE
    assert wait_until(lambda: level_is(DiagnosticStatus.WARN, "FREE_DRIVE"), 5)
    assert trigger("free_drive", False).success and controller.mode == 1 and driver.state == DriverState.READY

    controller.inject_collision()
    assert wait_until(lambda: level_is(DiagnosticStatus.ERROR, "C31"), 5)
    response = trigger("enable")  # enable does not skip clear_error
    assert not response.success and response.message.startswith("enable failed:"), response.message
    assert "clear_error" in response.message
    response = trigger("clear_error")
    assert response.success and response.message == "clear_error: driver READY", response.message
    assert controller.error_code == 0
    assert wait_until(lambda: level_is(DiagnosticStatus.OK, "READY"), 5)


def test_driver_status_and_diagnostics_carry_the_driver_status(io, driver_node, controller, monkeypatch):
    """Every DriverStatus field the status topic names, under its key, also on /diagnostics; the level
    per state. The driver's status() is replaced by made-up values, so each key must carry its own."""
    node, _pub, _states, status = io
    diagnostics = Collector(node, DiagnosticArray, "/diagnostics")
    fake = DriverStatus(
        state=DriverState.FAULT,
        fault="C31 made up",
        connected=True,
        mode=1,
        error_code=31,
        warn_code=0,
        servo_rate_hz=0.0,
        cycles=10,
        commands_sent=11,
        send_failures=12,
        trajectories_accepted=13,
        trajectories_rejected=14,
        last_rejection="made-up reason",
        late_cycles=15,
        stop_latched=True,
        intent="ENABLED",
        reconnects=16,
    )
    monkeypatch.setattr(driver_node.driver, "status", lambda: fake)
    expected = {
        "state": "FAULT",
        "connected": "true",
        "mode": "1",
        "error": error_text(31),
        "warning": warn_text(0),
        "servo_rate_hz": "0.0",
        "commands_sent": "11",
        "send_failures": "12",
        "late_cycles": "15",
        "trajectories_accepted": "13",
        "trajectories_rejected": "14",
        "last_rejection": "made-up reason",
        "stop_latched": "true",
        "intent": "ENABLED",
        "reconnects": "16",
    }
    assert wait_until(lambda: status.last() is not None and status_values(status.last()) == expected, 5), (
        status.last()
    )
    msg = status.last()
    assert msg.level == DiagnosticStatus.ERROR
    assert msg.message.startswith("FAULT: C31 made up") and "resume" in msg.message  # fault + latch
    assert msg.name.startswith("/xarm/xarm_driver") and msg.hardware_id == f"xarm@{controller.host}"
    assert wait_until(
        lambda: (
            len(diagnostics)
            and len(diagnostics.last().status) == 1
            and status_values(diagnostics.last().status[0]) == expected
        ),
        5,
    )
    assert diagnostics.last().status[0].name == msg.name
    levels = {
        DriverState.READY: DiagnosticStatus.OK,
        DriverState.DISABLED: DiagnosticStatus.WARN,
        DriverState.FREE_DRIVE: DiagnosticStatus.WARN,
        DriverState.DISCONNECTED: DiagnosticStatus.ERROR,
    }
    for state, level in levels.items():
        fake.state, fake.fault, fake.stop_latched = state, "", False
        assert wait_until(
            lambda s=state, lv=level: status.last().level == lv and status.last().message == s.value, 5
        ), (state, status.last())


def test_node_with_the_process_streamer(ros, controller) -> None:
    """streamer, rt_priority and cpu_affinity reach the streamer process through ROS parameters."""
    node = start_driver_node(
        ros, controller.host, timeout=20, streamer="process", rt_priority=10, cpu_affinity=[0, 1]
    )
    assert node.driver.streamer_pid is not None
    assert os.sched_getaffinity(node.driver.streamer_pid) == {0, 1} or os.cpu_count() < 2
    client = ros.node("process_streamer_client")
    pub = client.create_publisher(JointTrajectory, "/xarm/joint_trajectory", 10)
    states = Collector(client, JointState, "/xarm/joint_states")
    accepted = Collector(client, JointTrajectory, "/xarm/accepted_trajectory")
    assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
    goal = [0.3, -0.2, -0.4, 0.1, 0.5, 0.2, 0.4]
    pub.publish(trajectory([*ARM, "drive_joint"], [(0.8, goal)]))
    assert wait_until(
        lambda: (
            states.last() is not None
            and np.allclose(joint_vector(states.last(), [*ARM, "drive_joint"]), goal, atol=2e-3)
        ),
        15,
    )
    assert wait_until(lambda: len(accepted) >= 1, 5)
    assert np.allclose(accepted.last().points[-1].positions, goal)

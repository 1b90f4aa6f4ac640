"""Teleop dead-man on a monotonic clock (issue 13 item 8) and the optional gripper joint (item 9)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from geometry_msgs.msg import Twist, Vector3
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64
from trajectory_msgs.msg import JointTrajectory

from evo1_ros.control.limits import ARM_JOINTS
from evo1_ros.control.teleop import TwistHold
from evo1_ros.nodes.teleop import TeleopNode
from evo1_ros.polling import wait_until
from evo1_ros.ros.qos import COMMAND, SENSOR, STATE, STATUS
from fixtures.ros import Collector

Q0 = [0.2, -0.3, -0.7, 0.1, 1.0, -0.2]


def test_twist_hold_reads_a_twist_from_the_future_as_stale() -> None:
    """A clock that went back (sim time reset, /clock jump) must not keep an old twist fresh."""
    hold = TwistHold(timeout=0.3)
    hold.set([0.05, 0, 0, 0, 0, 0], now=100.0)
    tw, fresh = hold.get(70.0)  # 30 s "before" the twist arrived
    assert not fresh and not np.any(tw)
    assert hold.clock_problem  # and says why
    tw, fresh = hold.get(100.1)
    assert fresh and tw[0] == 0.05 and not hold.clock_problem


def test_twist_hold_defaults_to_the_monotonic_clock() -> None:
    hold = TwistHold(timeout=0.05)
    hold.set([0.05, 0, 0, 0, 0, 0])
    assert hold.get()[1]
    assert wait_until(lambda: not hold.get()[1], 5)


class _SimClock:
    """Publishes /clock from a thread: sim time running at wall speed from `start`, jumpable."""

    def __init__(self, node, start: float) -> None:
        self.pub = node.create_publisher(Clock, "/clock", 10)
        self.t = start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.t += 0.01
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = int(self.t), int((self.t % 1.0) * 1e9)
            self.pub.publish(msg)
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def _arm(node, names) -> None:
    pub = node.create_publisher(JointState, "/xarm/joint_states", STATE)
    node.create_timer(
        0.02, lambda: pub.publish(JointState(name=list(names), position=[*Q0, 0.0][: len(names)]))
    )


def _make(ros, **params):
    base = {
        "twist_timeout": 0.25,
        "deadband": 0.0,
        "button_start_episode": -1,
        "button_save_episode": -1,
        "button_discard_episode": -1,
    }
    base.update(params)
    return ros.add(
        TeleopNode(context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in base.items()])
    )


@pytest.mark.ros
def test_clock_jumping_back_does_not_keep_the_twist_alive(ros) -> None:
    """use_sim_time with /clock jumping 30 s back: the teleop still holds once the twist stops."""
    test = ros.node("test")
    clock = _SimClock(ros.node("sim_clock"), start=1000.0)
    try:
        _arm(ros.node("arm"), [*ARM_JOINTS, "drive_joint"])
        _make(ros, use_sim_time=True)
        traj = Collector(test, JointTrajectory, "/xarm/joint_trajectory", COMMAND)
        twist = test.create_publisher(Twist, "/spacenav/twist", SENSOR)
        assert traj.wait(3, timeout=15)
        n0 = len(traj)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(traj) < n0 + 10:  # jog up while commands come
            twist.publish(Twist(linear=Vector3(z=0.05)))
            time.sleep(0.02)
        assert not np.allclose(traj.last().points[0].positions[:6], Q0, atol=1e-4)  # it moved
        clock.t -= 30.0  # the simulation restarted: /clock goes 30 s back, the twist stops

        # within about twist_timeout the commands must stand still (before the fix they kept
        # integrating the last twist for as long as the clock stayed behind its stamp)
        def still() -> bool:
            tail = [m.points[0].positions for m in traj.snapshot()[-6:]]
            return len(tail) == 6 and all(np.allclose(p, tail[0], atol=1e-12) for p in tail)

        assert wait_until(still, 5)
        held = list(traj.last().points[0].positions)
        n = len(traj)
        assert wait_until(lambda: len(traj) >= n + 10, 10)  # still commanding (the timer is steady)...
        assert np.allclose(traj.last().points[0].positions, held, atol=1e-12)  # ...the same pose
    finally:
        clock.stop()


@pytest.mark.ros
def test_without_gripper_commands_only_the_arm_joints(ros) -> None:
    """gripper:=false on the driver has no drive_joint: teleop must not command it (item 9)."""
    test = ros.node("test")
    _arm(ros.node("arm"), ARM_JOINTS)  # a driver without gripper reports only the arm joints
    node = _make(ros, gripper=False)
    traj = Collector(test, JointTrajectory, "/xarm/joint_trajectory", COMMAND)
    grip = Collector(test, Float64, "/teleop/gripper", STATUS)
    assert traj.wait(3, timeout=15)
    msg = traj.last()
    assert list(msg.joint_names) == list(ARM_JOINTS)
    assert np.allclose(msg.points[0].positions, Q0, atol=1e-9)
    node.toggle_gripper()  # a gripper button press is refused with a log line, not a command
    n = len(traj)
    assert traj.wait(n + 3, timeout=10)
    assert all(list(m.joint_names) == list(ARM_JOINTS) for m in traj.snapshot())
    assert len(grip) == 0


@pytest.mark.ros
def test_driver_without_gripper_executes_teleop_commands(ros) -> None:
    """The real driver (gripper:=false) against the loopback controller accepts and runs the jog."""
    from evo1_ros.driver.arm_driver import DriverState
    from evo1_ros.sim.loopback_controller import LoopbackController
    from evo1_ros.sim.loopback_host import free_loopback_host
    from fixtures.xarm import start_driver_node

    controller = LoopbackController(host=free_loopback_host()).start()
    try:
        driver = start_driver_node(ros, controller.host, timeout=15, gripper=False)
        q_start = controller.q.copy()
        _make(ros, gripper=False)
        twist = ros.node("test").create_publisher(Twist, "/spacenav/twist", SENSOR)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and np.max(np.abs(controller.q - q_start)) < 0.01:
            twist.publish(Twist(linear=Vector3(x=0.05)))
            time.sleep(0.02)
        st = driver.driver.status()
        assert np.max(np.abs(controller.q - q_start)) >= 0.01, st  # the arm jogged
        assert st.state == DriverState.READY, st
    finally:
        for node in list(ros._nodes):
            ros.remove(node)
        controller.stop()

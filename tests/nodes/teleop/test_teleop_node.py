"""The teleop node over real topics: Twist in -> JointTrajectory out moving the TCP along the twist."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import Twist, Vector3
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Float64
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from evo1_ros.control.kinematics import TCP_LINK, SerialChain
from evo1_ros.control.limits import ARM_JOINTS
from evo1_ros.nodes.teleop import TeleopNode
from evo1_ros.polling import wait_until
from evo1_ros.ros.qos import COMMAND, SENSOR, STATE, STATUS
from fixtures.ros import Collector

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[3]
CHAIN = SerialChain.from_urdf(tip=TCP_LINK)
Q0 = [0.2, -0.3, -0.7, 0.1, 1.0, -0.2]
NAMES = [*ARM_JOINTS, "drive_joint"]


class ArmStub:
    """Publishes joint states (50 Hz) of an arm that follows the commands it receives, like the driver."""

    def __init__(self, node, follow: bool = True) -> None:
        self.node = node
        self.q = np.array([*Q0, 0.0])
        self.lock = threading.Lock()
        self.pub = node.create_publisher(JointState, "/xarm/joint_states", STATE)
        if follow:
            node.create_subscription(JointTrajectory, "/xarm/joint_trajectory", self._cmd, COMMAND)
        node.create_timer(0.02, self._tick)

    def _cmd(self, msg: JointTrajectory) -> None:
        pos = dict(zip(msg.joint_names, msg.points[0].positions))
        with self.lock:
            self.q = np.array([pos[n] for n in NAMES])

    def _tick(self) -> None:
        with self.lock:
            q = self.q.copy()
        self.pub.publish(JointState(name=NAMES, position=q.tolist()))


def make_teleop(ros, **params):
    defaults = {
        "twist_timeout": 0.25,
        "deadband": 0.0,
        "button_start_episode": -1,
        "button_save_episode": -1,
        "button_discard_episode": -1,
    }
    defaults.update(params)
    return ros.add(
        TeleopNode(
            context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in defaults.items()]
        )
    )


def fk_pos(positions) -> np.ndarray:
    return CHAIN.fk(np.asarray(positions[:6]))[:3, 3]


def went_quiet(traj: Collector) -> bool:
    """No new command for 0.3 s (the free-drive reply is in flight for a moment before teleop stops)."""
    before = len(traj)
    time.sleep(0.3)
    return len(traj) == before


def test_twist_moves_the_tcp_along_it_then_holds(ros):
    test = ros.node("test")
    ArmStub(ros.node("arm"))
    make_teleop(ros)
    traj = Collector(test, JointTrajectory, "/xarm/joint_trajectory", COMMAND)
    grip = Collector(test, Float64, "/teleop/gripper", STATUS)
    twist_pub = test.create_publisher(Twist, "/spacenav/twist", SENSOR)
    assert traj.wait(3, timeout=15)  # idle: holding the measured pose
    first = traj.last()
    assert list(first.joint_names) == NAMES
    assert first.points[0].time_from_start.nanosec == 100_000_000
    np.testing.assert_allclose(first.points[0].positions[:6], Q0, atol=1e-9)

    n0 = len(traj)
    t_end = time.monotonic() + 10.0
    # "up" at 0.04 m/s, streamed as spacenav would, until the commanded TCP rose 2 cm (no timing
    # assumption: a loaded machine just takes longer).
    while time.monotonic() < t_end:
        twist_pub.publish(Twist(linear=Vector3(x=0.0, y=0.0, z=0.04)))
        time.sleep(0.02)
        latest = traj.last()
        if len(traj) > n0 and fk_pos(latest.points[0].positions)[2] - fk_pos(Q0)[2] > 0.02:
            break
    moved_msgs = traj.snapshot()[n0:]
    assert len(moved_msgs) >= 2
    end = moved_msgs[-1].points[0].positions
    moved = fk_pos(end) - fk_pos(Q0)
    assert moved[2] > 0.015, moved  # went up...
    assert np.linalg.norm(moved[:2]) < 0.2 * moved[2]  # ...and (almost) only up
    # twist stops -> after the timeout the commands hold still
    assert wait_until(lambda: len(traj) >= len(moved_msgs) + n0 + 15, 10)
    tail = [m.points[0].positions for m in traj.snapshot()[-5:]]
    for p in tail[1:]:
        np.testing.assert_allclose(p, tail[0], atol=1e-12)
    assert grip.wait(1) and grip.last().data == 0.0


def test_joy_buttons_toggle_gripper_and_free_drive(ros):
    test = ros.node("test")
    ArmStub(ros.node("arm"))
    calls: list[bool] = []
    driver = ros.node("xarm_driver_stub")

    def free_drive(req, res):
        calls.append(req.data)
        res.success = True
        return res

    driver.create_service(SetBool, "/xarm/free_drive", free_drive)
    make_teleop(ros, button_gripper=0, button_free_drive=3)
    traj = Collector(test, JointTrajectory, "/xarm/joint_trajectory", COMMAND)
    joy = test.create_publisher(Joy, "/joy", SENSOR)
    assert traj.wait(2, timeout=15)

    def press(i: int) -> None:
        for state in (0, 1, 0):
            buttons = [0] * 8
            buttons[i] = state
            joy.publish(Joy(buttons=buttons))
            time.sleep(0.1)

    press(0)
    assert wait_until(lambda: traj.last().points[0].positions[6] == 0.85, 5)
    press(3)
    assert wait_until(lambda: calls == [True], 5)
    assert wait_until(lambda: went_quiet(traj), 10)  # the service reply lands, then teleop is silent
    n = len(traj)
    time.sleep(0.4)
    assert len(traj) == n  # no commands while the arm is in free-drive
    press(3)
    assert wait_until(lambda: calls == [True, False], 5)
    assert wait_until(lambda: len(traj) > n + 3, 5)  # commanding again
    assert traj.last().points[0].positions[6] == 0.85


def test_keyboard_mode_jogs_from_piped_keys(ros, ros_env, tmp_path):
    test = ros.node("test")
    ArmStub(ros.node("arm"))
    traj = Collector(test, JointTrajectory, "/xarm/joint_trajectory", COMMAND)
    exe = str(Path(sys.executable).parent / "teleop")
    log = open(tmp_path / "teleop.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            exe,
            "--keyboard",
            "--ros-args",
            "--params-file",
            str(REPO / "config" / "teleop.yaml"),
            "-p",
            "twist_timeout:=0.3",
        ],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=ros_env,
    )
    try:
        assert traj.wait(3, timeout=20), (tmp_path / "teleop.log").read_text()
        start = traj.last().points[0].positions
        for _ in range(15):  # key repeat of "r" (up) for about 1.5 s
            proc.stdin.write("r\n")
            proc.stdin.flush()
            time.sleep(0.1)
        assert wait_until(lambda: fk_pos(traj.last().points[0].positions)[2] - fk_pos(start)[2] > 0.01, 5)
        proc.stdin.write("q\n")
        proc.stdin.flush()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    moved = fk_pos(traj.last().points[0].positions) - fk_pos(start)
    assert np.linalg.norm(moved[:2]) < 0.2 * moved[2]
    assert "keyboard jog:" in (tmp_path / "teleop.log").read_text()


def test_free_drive_parameter_waits_for_the_driver(ros):
    test = ros.node("test")
    ArmStub(ros.node("arm"), follow=False)
    make_teleop(ros, free_drive=True)
    traj = Collector(test, JointTrajectory, "/xarm/joint_trajectory", COMMAND)
    time.sleep(1.0)  # the driver is not there yet: the teleop keeps asking until it is
    calls: list[bool] = []

    def free_drive(req, res):
        calls.append(req.data)
        res.success = True
        return res

    ros.node("xarm_driver_stub").create_service(SetBool, "/xarm/free_drive", free_drive)
    assert wait_until(lambda: calls == [True], 10)

    assert wait_until(lambda: went_quiet(traj), 10)
    n = len(traj)
    time.sleep(0.5)
    assert len(traj) == n and calls == [True]  # asked once, and silent in free-drive

"""robot_state node: /tf + /tf_static + robot_description equal the URDF's forward kinematics.

Issue 16 item 2. The node runs as a real process (the console-script module with the shipped
config/robot_state.yaml); the test listens over DDS like RViz would and rebuilds each link pose by
chaining the received transforms, then compares with `SerialChain` FK from the same URDF (1e-6).
The second test puts the real xarm_driver (over the real xArm SDK, loopback controller started at a
random pose) in front, so the joint states are the driver's own.
"""

from __future__ import annotations

import sys
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Transform
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from evo1_ros.control.kinematics import BASE_LINK, TCP_LINK, SerialChain, axis_angle_matrix
from evo1_ros.control.limits import GripperPulseMap, JointLimits
from evo1_ros.control.urdf import default_urdf_path, parse_urdf
from evo1_ros.nodes.robot_state import TF_QOS, TF_STATIC_QOS, quaternion_xyzw
from evo1_ros.polling import wait_until
from evo1_ros.ros.qos import LATCHED, STATE
from fixtures.ros import Collector
from tf2_msgs.msg import TFMessage

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[3]
ARM = [f"joint{i}" for i in range(1, 7)]
GRIPPER = "drive_joint"
TOL = 1e-6


def _matrix(transform) -> np.ndarray:
    """4x4 from a geometry_msgs/Transform."""
    x, y, z, w = (transform.rotation.x, transform.rotation.y, transform.rotation.z, transform.rotation.w)
    T = np.eye(4)
    T[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    T[:3, 3] = [transform.translation.x, transform.translation.y, transform.translation.z]
    return T


class TfBuffer:
    """/tf_static once, /tf grouped by stamp: enough to chain any link pose at a given stamp."""

    def __init__(self, node) -> None:
        self.static: dict[str, tuple[str, np.ndarray]] = {}
        self.by_stamp: dict[int, dict[str, tuple[str, np.ndarray]]] = defaultdict(dict)
        self._lock = threading.Lock()
        node.create_subscription(TFMessage, "/tf_static", self._on_static, TF_STATIC_QOS)
        node.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS)

    def _on_static(self, msg: TFMessage) -> None:
        with self._lock:
            for t in msg.transforms:
                self.static[t.child_frame_id] = (t.header.frame_id, _matrix(t.transform))

    def _on_tf(self, msg: TFMessage) -> None:
        with self._lock:
            for t in msg.transforms:
                ns = t.header.stamp.sec * 1_000_000_000 + t.header.stamp.nanosec
                self.by_stamp[ns][t.child_frame_id] = (t.header.frame_id, _matrix(t.transform))

    def stamps(self) -> list[int]:
        with self._lock:
            return sorted(self.by_stamp)

    def pose(self, stamp_ns: int, base: str, link: str) -> np.ndarray:
        """Pose of `link` in `base` at a stamp; KeyError names a missing frame."""
        with self._lock:
            edges = {**self.static, **self.by_stamp[stamp_ns]}
        T = np.eye(4)
        while link != base:
            parent, M = edges[link]
            T = M @ T
            link = parent
        return T


class Expected:
    """URDF forward kinematics (control/kinematics.py) for the links the test checks."""

    def __init__(self) -> None:
        self.model = parse_urdf(default_urdf_path())
        self.tcp = SerialChain.from_urdf(tip=TCP_LINK)
        self.knuckle = SerialChain.from_urdf(tip="left_outer_knuckle")  # arm + drive_joint
        self.gripper_base = SerialChain.from_urdf(tip="xarm_gripper_base_link")
        self.mimic = [j for j in self.model.joints.values() if j.mimic == GRIPPER]
        assert len(self.mimic) == 5, "the xArm Gripper's linkage: five joints follow drive_joint"

    def check(self, tf: TfBuffer, stamp_ns: int, q_arm: np.ndarray, q_drive: float) -> float:
        """Largest |difference| over the checked links' 4x4 poses."""
        errs = [
            np.abs(tf.pose(stamp_ns, BASE_LINK, TCP_LINK) - self.tcp.fk(q_arm)).max(),
            np.abs(
                tf.pose(stamp_ns, BASE_LINK, "left_outer_knuckle") - self.knuckle.fk([*q_arm, q_drive])
            ).max(),
        ]
        G = self.gripper_base.fk(q_arm)
        for j in self.mimic:  # each follower: gripper base (or its knuckle) @ origin @ rotation(q)
            parent = G if j.parent == "xarm_gripper_base_link" else tf.pose(stamp_ns, BASE_LINK, j.parent)
            M = np.eye(4)
            M[:3, :3] = axis_angle_matrix(j.axis, j.mimic_multiplier * q_drive + j.mimic_offset)
            errs.append(np.abs(tf.pose(stamp_ns, BASE_LINK, j.child) - parent @ j.origin @ M).max())
        return float(max(errs))


def _robot_state_argv(*ros_args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "evo1_ros.nodes.robot_state",
        "--ros-args",
        "--params-file",
        str(REPO / "config" / "robot_state.yaml"),
        *ros_args,
    ]


def _stamp_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def test_quaternion_round_trip_near_every_angle() -> None:
    rng = np.random.default_rng(3)
    for angle in [0.0, 1e-9, 1.0, np.pi - 1e-9, np.pi, *rng.uniform(0, np.pi, 20)]:
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        R = axis_angle_matrix(axis, angle)
        x, y, z, w = quaternion_xyzw(R)
        t = Transform()
        t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w = x, y, z, w
        assert np.abs(_matrix(t)[:3, :3] - R).max() < 1e-12, angle


def test_tf_matches_fk_for_random_joint_states(ros, spawn) -> None:
    proc = spawn(_robot_state_argv(), name="robot_state")
    node = ros.node("tf_test")
    tf = TfBuffer(node)
    expected = Expected()
    descriptions = Collector(node, String, "/robot_description", LATCHED)
    pub = node.create_publisher(JointState, "joint_states", STATE)
    assert wait_until(lambda: pub.get_subscription_count() > 0, 30), proc.output()

    # latched description = the URDF file; /tf_static = every fixed joint
    assert descriptions.wait(1, timeout=15), proc.output()
    assert descriptions.last().data == default_urdf_path().read_text()
    fixed = {j.child: j.parent for j in expected.model.joints.values() if j.type == "fixed"}
    assert wait_until(lambda: set(tf.static) == set(fixed), 15), tf.static.keys()
    assert all(tf.static[c][0] == p for c, p in fixed.items())

    limits = JointLimits.from_yaml()
    lower, upper = limits.lower[: len(ARM)], limits.upper[: len(ARM)]
    assert list(limits.names[: len(ARM)]) == ARM
    rng = np.random.default_rng(16)
    worst = 0.0
    for i in range(25):
        q_arm = rng.uniform(lower, upper)
        q_drive = float(rng.uniform(0.0, 0.85))
        msg = JointState(name=[*ARM, GRIPPER], position=[*q_arm, q_drive])
        # 0.1 s apart: above config/robot_state.yaml's publish_frequency period, so none is skipped
        msg.header.stamp = Time(sec=1000 + i // 10, nanosec=(i % 10) * 100_000_000)
        pub.publish(msg)
        ns = _stamp_ns(msg.header.stamp)
        assert wait_until(lambda ns=ns: ns in tf.stamps(), 10), f"no /tf for state {i}\n{proc.output()}"
        worst = max(worst, expected.check(tf, ns, q_arm, q_drive))
    assert worst < TOL, f"TF differs from the URDF FK by {worst:.3g}"

    # /tf carries the standard tf2_msgs type: same name and RIHS01 hash as upstream (rosbags' Kilted store)
    from rosbags.typesys import Stores, get_typestore

    infos = node.get_publishers_info_by_topic("/tf")
    assert infos and infos[0].topic_type == "tf2_msgs/msg/TFMessage"
    upstream = get_typestore(Stores.ROS2_KILTED).hash_rihs01("tf2_msgs/msg/TFMessage")
    assert str(infos[0].topic_type_hash) == upstream


def test_driver_joint_states_give_fk_tf(ros, spawn) -> None:
    from evo1_ros.sim.loopback_config import GripperConfig, LoopbackConfig
    from evo1_ros.sim.loopback_controller import LoopbackController
    from evo1_ros.sim.loopback_host import free_loopback_host
    from fixtures.xarm import start_driver_node

    limits = JointLimits.from_yaml()
    pulses = GripperPulseMap.from_yaml()
    rng = np.random.default_rng(7)
    margin = 0.2
    lower, upper = limits.lower[: len(ARM)] + margin, limits.upper[: len(ARM)] - margin
    start, goal = rng.uniform(lower, upper), rng.uniform(lower, upper)
    grip = float(rng.uniform(100.0, 800.0))
    ctrl = LoopbackController(
        host=free_loopback_host(),
        config=LoopbackConfig(initial_joints=list(start), gripper=GripperConfig(initial_pulses=grip)),
    ).start()
    try:
        driver = start_driver_node(ros, ctrl.host, timeout=20)
        proc = spawn(_robot_state_argv("-r", "joint_states:=/xarm/joint_states"), name="robot_state")
        node = ros.node("tf_driver_test")
        tf = TfBuffer(node)
        states = Collector(node, JointState, "/xarm/joint_states", STATE)
        assert wait_until(lambda: len(tf.stamps()) > 0, 30), proc.output()

        # move to another random pose: every joint state on the way is a new case
        cmd = node.create_publisher(JointTrajectory, "/xarm/joint_trajectory", 10)
        assert wait_until(lambda: cmd.get_subscription_count() > 0, 10)
        traj = JointTrajectory(joint_names=ARM)
        traj.points = [JointTrajectoryPoint(positions=list(goal), time_from_start=Duration(sec=2))]
        cmd.publish(traj)

        def arrived() -> bool:
            last = states.last()
            if last is None:
                return False
            q = dict(zip(last.name, last.position, strict=True))
            return np.allclose([q[n] for n in ARM], goal, atol=2e-3)

        assert wait_until(arrived, 30), driver.driver.status()
        # the last published states may still await their /tf: wait for TF of the final stamp
        final_ns = _stamp_ns(states.last().header.stamp)
        wait_until(lambda: tf.stamps() and tf.stamps()[-1] >= final_ns - 50_000_000, 10)
    finally:
        ctrl.stop()

    expected = Expected()
    by_stamp = {_stamp_ns(m.header.stamp): m for m in states.snapshot()}
    matched = [ns for ns in tf.stamps() if ns in by_stamp]
    assert len(matched) >= 20, f"only {len(matched)} /tf stamps match joint states\n{proc.output()}"
    worst, spread = 0.0, []
    for ns in matched:
        q = dict(zip(by_stamp[ns].name, by_stamp[ns].position, strict=True))
        q_arm = np.array([q[n] for n in ARM])
        spread.append(q_arm)
        worst = max(worst, expected.check(tf, ns, q_arm, q[GRIPPER]))
    assert worst < TOL, f"TF differs from the URDF FK by {worst:.3g}"
    assert np.ptp(np.array(spread), axis=0).max() > 0.5, "the arm did not move: only one pose was checked"
    # the gripper joint is the driver's (random start opening), not a default
    assert abs(q[GRIPPER] - pulses.pulses_to_rad(grip)) < 0.02, (q[GRIPPER], grip)

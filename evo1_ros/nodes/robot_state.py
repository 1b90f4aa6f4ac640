"""`robot_state` node: `robot_description` + `/tf` + `/tf_static` from joint states, without a ROS install.

RViz and Foxglove need the URDF on `robot_description` and the link transforms on `/tf`. With a
ROS 2 install the launch files start `robot_state_publisher`; a pip-only venv has none, so this node
does the same job from the project's own URDF reader and kinematics (`control/urdf.py`,
`control/kinematics.py`), with robot_state_publisher's topics, QoS and parameter meanings:

* `robot_description` (std_msgs/String, reliable + transient local): the URDF text;
* `/tf_static` (tf2_msgs/TFMessage, transient local): every fixed joint, once at start-up;
* `/tf` (tf2_msgs/TFMessage): every movable joint named in `joint_states` (launch remaps it to
  `/xarm/joint_states`), plus the mimic joints that follow them (the gripper's linkage follows
  `drive_joint`), stamped with the joint state's stamp; at most `publish_frequency` Hz unless
  `ignore_timestamp`.

`prefer_robot_state_publisher()` is for launch files: where a ROS install has robot_state_publisher,
it takes this node's place in a launch description (same topics, remappings and parameter file).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from evo1_ros.control.kinematics import axis_angle_matrix
from evo1_ros.control.urdf import UrdfJoint, UrdfModel, default_urdf_path, parse_urdf
from evo1_ros.launcher.description import SUBSTITUTION, LaunchDescriptionSpec, NodeSpec, substitute
from evo1_ros.parameters import param, validate_fields
from evo1_ros.paths import PACKAGE, ament_prefixes
from evo1_ros.ros.node_runner import run_node
from evo1_ros.ros.params import declare_config
from evo1_ros.ros.qos import LATCHED, qos_preset
from tf2_msgs.msg import TFMessage


@dataclass(frozen=True)
class RobotStateParams:
    """The node's parameters (robot_state_publisher's names and meanings, + the joint_states QoS)."""

    urdf_path: str = param("", "URDF file to publish and compute TF from; empty = the package's xArm6 URDF")
    publish_frequency: float = param(
        50.0,
        "max /tf rate (Hz), by joint-state stamps (as robot_state_publisher)",
        min=0.1,
    )
    ignore_timestamp: bool = param(False, "publish /tf for every joint state, stamped now")
    frame_prefix: str = param("", "prepended to every frame id (as robot_state_publisher)")
    joint_states_qos: str = param(
        "state", "QoS preset of the joint_states subscription", choices=["state", "sensor"]
    )

    def __post_init__(self) -> None:
        validate_fields(self)


PARAMETERS = RobotStateParams

# tf2_ros's broadcaster profiles, so RViz/Foxglove/tf2 listeners connect as they do to robot_state_publisher.
TF_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
TF_STATIC_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def quaternion_xyzw(R: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of a rotation matrix (Shepperd's method: stable for every angle)."""
    t = float(np.trace(R))
    if t > 0.0:
        s = 2.0 * math.sqrt(t + 1.0)
        q = ((R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s)
    elif R[0, 0] >= R[1, 1] and R[0, 0] >= R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = (0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s)
    elif R[1, 1] >= R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = ((R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = ((R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s)
    n = math.sqrt(sum(c * c for c in q))
    x, y, z, w = (float(c / n) for c in q)
    return (x, y, z, w) if w >= 0.0 else (-x, -y, -z, -w)


class JointTransforms:
    """Parent->child transform of each URDF joint at given positions (no ROS; used by the node).

    Movable joint: ``origin @ motion(q)`` (rotation about / translation along its axis); a mimic
    joint takes ``multiplier * q[master] + offset``; fixed joints are constant.
    """

    def __init__(self, model: UrdfModel) -> None:
        """Index the model's joints; raises ValueError for a mimic joint whose master is unknown."""
        self.model = model
        self.fixed = [j for j in model.joints.values() if j.type == "fixed"]
        self.movable = [j for j in model.joints.values() if j.movable and j.mimic is None]
        self.mimic = [j for j in model.joints.values() if j.movable and j.mimic is not None]
        self.unsupported = [j.name for j in model.joints.values() if not j.movable and j.type != "fixed"]
        names = {j.name for j in self.movable}
        for j in self.mimic:
            if j.mimic not in names:
                raise ValueError(f"mimic joint {j.name!r} follows {j.mimic!r}, which is not a movable joint")

    @staticmethod
    def joint_transform(joint: UrdfJoint, q: float) -> np.ndarray:
        """4x4 transform parent link -> child link of ``joint`` at position ``q`` (rad or m)."""
        motion = np.eye(4)
        if joint.type == "prismatic":
            motion[:3, 3] = joint.axis * q
        elif joint.movable:
            motion[:3, :3] = axis_angle_matrix(joint.axis, q)
        return joint.origin @ motion

    def moving(self, positions: Mapping[str, float]) -> list[tuple[UrdfJoint, np.ndarray]]:
        """Transforms of the movable joints given in ``positions`` and of the mimic joints following them."""
        out = [(j, self.joint_transform(j, positions[j.name])) for j in self.movable if j.name in positions]
        for j in self.mimic:
            if j.mimic in positions:
                q = j.mimic_multiplier * positions[j.mimic] + j.mimic_offset
                out.append((j, self.joint_transform(j, q)))
        return out

    def static(self) -> list[tuple[UrdfJoint, np.ndarray]]:
        """Transforms of the fixed joints."""
        return [(j, j.origin) for j in self.fixed]


class RobotStateNode(Node):
    """Publishes the URDF and the TF tree of the arm from its joint states."""

    def __init__(self, **kwargs) -> None:
        super().__init__("robot_state", **kwargs)
        p = declare_config(self, PARAMETERS)
        path = Path(p.urdf_path) if p.urdf_path else default_urdf_path()
        if not path.is_file():
            raise FileNotFoundError(f"urdf_path: no URDF file at {path} (leave it empty for the xArm6 URDF)")
        self.urdf_text = path.read_text()
        self.transforms = JointTransforms(parse_urdf(self.urdf_text))
        if self.transforms.unsupported:
            self.get_logger().warning(f"joints of unsupported types get no TF: {self.transforms.unsupported}")
        self.prefix = p.frame_prefix
        self.min_period_ns = int(1e9 / p.publish_frequency)
        self.ignore_timestamp = p.ignore_timestamp
        self._last_stamp_ns: int | None = None
        self._warned_missing = False

        self.description_pub = self.create_publisher(String, "robot_description", LATCHED)
        self.description_pub.publish(String(data=self.urdf_text))
        self.tf_pub = self.create_publisher(TFMessage, "/tf", TF_QOS)
        self.tf_static_pub = self.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        now = self.get_clock().now().to_msg()
        self.tf_static_pub.publish(
            TFMessage(transforms=[self._stamped(j, T, now) for j, T in self.transforms.static()])
        )
        self.create_subscription(
            JointState, "joint_states", self._on_joint_state, qos_preset(p.joint_states_qos)
        )
        self.get_logger().info(
            f"publishing {path.name}: {len(self.transforms.fixed)} fixed joints on /tf_static, "
            f"{len(self.transforms.movable)} movable + {len(self.transforms.mimic)} mimic joints on /tf "
            f"from {self.resolve_topic_name('joint_states')}"
        )

    def _stamped(self, joint: UrdfJoint, T: np.ndarray, stamp) -> TransformStamped:
        msg = TransformStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self.prefix + joint.parent
        msg.child_frame_id = self.prefix + joint.child
        t = msg.transform.translation
        t.x, t.y, t.z = (float(v) for v in T[:3, 3])
        r = msg.transform.rotation
        r.x, r.y, r.z, r.w = quaternion_xyzw(T[:3, :3])
        return msg

    def _on_joint_state(self, msg: JointState) -> None:
        if len(msg.position) != len(msg.name):
            self.get_logger().warning(
                f"joint_states with {len(msg.name)} names but {len(msg.position)} positions ignored",
                throttle_duration_sec=5.0,
            )
            return
        stamp_ns = Time.from_msg(msg.header.stamp).nanoseconds
        if self.ignore_timestamp or stamp_ns == 0:
            stamp = self.get_clock().now().to_msg()
        else:
            if self._last_stamp_ns is not None and stamp_ns - self._last_stamp_ns < self.min_period_ns:
                if stamp_ns < self._last_stamp_ns - int(1e9):  # clock went back (bag loop, sim reset)
                    self._last_stamp_ns = None
                return
            self._last_stamp_ns = stamp_ns
            stamp = msg.header.stamp
        positions = {n: float(q) for n, q in zip(msg.name, msg.position, strict=True) if math.isfinite(q)}
        if not self._warned_missing:
            missing = sorted(j.name for j in self.transforms.movable if j.name not in positions)
            if missing:
                self.get_logger().warning(f"joint_states lacks {missing}: their links get no TF")
            self._warned_missing = True
        moving = self.transforms.moving(positions)
        if moving:
            self.tf_pub.publish(TFMessage(transforms=[self._stamped(j, T, stamp) for j, T in moving]))


RSP = "robot_state_publisher"


def robot_state_publisher_executable(prefixes: Sequence[str] | None = None) -> Path | None:
    """`<prefix>/lib/robot_state_publisher/robot_state_publisher` of a ROS install, or None."""
    for prefix in ament_prefixes() if prefixes is None else prefixes:
        exe = Path(prefix) / "lib" / RSP / RSP
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe
    return None


def _urdf_path_of(node: NodeSpec) -> Path:
    """The URDF the robot_state entry would publish: its `urdf_path` (last one set wins) or the default."""
    path = ""
    for entry in node.parameters:
        if isinstance(entry, dict):
            path = str(entry.get("urdf_path", path))
            continue
        if any(m.group("kind") == "var" for m in SUBSTITUTION.finditer(entry)):
            continue  # depends on launch arguments not known yet; the default URDF is used
        values = yaml.safe_load(Path(substitute(entry, {})).read_text()) or {}
        for section in values.values():
            path = str((section or {}).get("ros__parameters", {}).get("urdf_path", path))
    return Path(path) if path else default_urdf_path()


def prefer_robot_state_publisher(
    spec: LaunchDescriptionSpec, prefixes: Sequence[str] | None = None
) -> LaunchDescriptionSpec:
    """`spec` with its robot_state entries run by robot_state_publisher, when one is installed.

    The entry keeps its namespace, remappings (joint_states), conditions and parameter files
    (publish_frequency, ignore_timestamp and frame_prefix mean the same to both); the URDF text goes in
    through an extra parameter file (``robot_description``), written once per content in the temp dir.
    Without robot_state_publisher the spec comes back unchanged and the project node runs.
    """
    if robot_state_publisher_executable(prefixes) is None:
        return spec
    nodes = []
    for node in spec.nodes:
        if node.package == PACKAGE and node.executable == "robot_state":
            text = _urdf_path_of(node).read_text()
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            params = Path(tempfile.gettempdir()) / f"evo1_robot_description_{digest}.yaml"
            if not params.is_file():
                tmp = params.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"robot_description": text}}}))
                tmp.replace(params)
            node = dataclasses.replace(
                node, name=RSP, package=RSP, executable=RSP, parameters=(*node.parameters, str(params))
            )
        nodes.append(node)
    return dataclasses.replace(spec, nodes=tuple(nodes))


def main(args: list[str] | None = None) -> int:
    return run_node(RobotStateNode, "robot_state", args=args)


if __name__ == "__main__":
    sys.exit(main())

"""Test rig for the recorder: synthetic cameras, joint states and trajectory commands over real topics."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from evo1_ros.ros.image import numpy_to_image
from evo1_ros.ros.qos import COMMAND, SENSOR, STATE

JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "drive_joint")
CAMERAS = ("cam0", "cam1")
WIDTH, HEIGHT = 64, 48
COLORS = {"cam0": (200, 40, 40), "cam1": (30, 160, 220)}
RECORDER_EXE = str(Path(sys.executable).parent / "recorder")
KEYBOARD_EXE = str(Path(sys.executable).parent / "recorder_keyboard")


def write_features(path: Path) -> Path:
    """A features file with the xArm joints, no cameras (sizes come from parameters), H.264 video."""
    cfg = {
        "robot_type": "xarm6",
        "fps": 30,
        "state": {"names": list(JOINTS)},
        "action": {"names": list(JOINTS)},
        "cameras": {},
        "extra": {},
        "video": {"codec": "libx264", "gop": 2},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def recorder_params(dataset_dir: Path, features_file: Path, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "dataset_dir": str(dataset_dir),
        "features_file": str(features_file),
        "cameras": list(CAMERAS),
        "image_width": WIDTH,
        "image_height": HEIGHT,
        "fps": 30,
        "reset_time": 0.0,
        "episode_time_limit": 0.0,
        "status_rate": 10.0,
        "camera_max_age": 0.25,
        "state_max_age": 0.25,
    }
    params.update(overrides)
    return params


def as_overrides(params: dict[str, Any]) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in params.items()]


def as_ros_args(params: dict[str, Any]) -> list[str]:
    out = ["--ros-args"]
    for k, v in params.items():
        if isinstance(v, list):
            text = "[" + ",".join(str(x) for x in v) + "]"
        elif isinstance(v, bool):
            text = "true" if v else "false"
        else:
            text = str(v)
        out += ["-p", f"{k}:={text}"]
    return out


class Rig:
    """Publishes cameras (30 Hz), joint states (100 Hz) and one-point trajectories (30 Hz).

    Every joint state and every trajectory carries distinct values, remembered here, so a test can
    check that each recorded row is one of the published messages.
    """

    def __init__(self, node: Any, cameras: tuple[str, ...] = CAMERAS, trajectories: bool = True) -> None:
        self.node = node
        self.lock = threading.Lock()
        self.enabled = dict.fromkeys(cameras, True)
        self.states: list[np.ndarray] = []
        self.commands: list[np.ndarray] = []
        self._k = 0
        self._c = 0
        self.cam_pubs = {c: node.create_publisher(Image, f"/cameras/{c}/image_raw", SENSOR) for c in cameras}
        self.images = {
            c: np.broadcast_to(np.array(COLORS[c], np.uint8), (HEIGHT, WIDTH, 3)).copy() for c in cameras
        }
        self.js_pub = node.create_publisher(JointState, "/xarm/joint_states", STATE)
        # the recorder records what the driver accepted (accepted_trajectory, issue 13 item 12)
        self.traj_pub = node.create_publisher(JointTrajectory, "/xarm/accepted_trajectory", COMMAND)
        node.create_timer(1 / 30, self._cameras)
        node.create_timer(0.01, self._joint_state)
        if trajectories:
            node.create_timer(1 / 30, self._trajectory)

    @staticmethod
    def state_at(k: int) -> np.ndarray:
        return np.array([0.1 * (i + 1) + 0.001 * k for i in range(6)] + [0.2 + 1e-4 * k])

    @staticmethod
    def command_at(c: int) -> np.ndarray:
        return np.array([-0.1 * (i + 1) - 0.002 * c for i in range(6)] + [0.5 - 1e-4 * c])

    def _cameras(self) -> None:
        stamp = self.node.get_clock().now().to_msg()
        for c, pub in self.cam_pubs.items():
            if self.enabled[c]:
                pub.publish(numpy_to_image(self.images[c], "rgb8", stamp, c))

    def _joint_state(self) -> None:
        with self.lock:
            q = self.state_at(self._k)
            self._k += 1
            self.states.append(q)
        msg = JointState()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.name = list(JOINTS)
        msg.position = q.tolist()
        self.js_pub.publish(msg)

    def _trajectory(self) -> None:
        with self.lock:
            q = self.command_at(self._c)
            self._c += 1
            self.commands.append(q)
        msg = JointTrajectory()
        msg.joint_names = list(JOINTS)
        msg.points = [JointTrajectoryPoint(positions=q.tolist())]  # time_from_start 0: hold this target
        self.traj_pub.publish(msg)


def call(node: Any, srv_type: Any, name: str, request: Any = None, timeout: float = 30.0) -> Any:
    """Call a service from a node spun by the test executor; returns the response (asserts it came)."""
    client = node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=15.0), f"service {name} not available"
        future = client.call_async(request if request is not None else srv_type.Request())
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not future.done():
            client.remove_pending_request(future)
        assert future.done(), f"service {name} did not answer within {timeout} s"
        return future.result()
    finally:
        node.destroy_client(client)


def answered(node: Any, srv_type: Any, name: str, timeout: float = 30.0) -> bool:
    """True once a harmless request to ``name`` gets an answer (retried with a fresh client).

    After a server process is killed its DDS participant stays known until its lease expires, so
    ``wait_for_service`` can succeed for the dead server while a restarted one is not matched yet.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = node.create_client(srv_type, name)
        try:
            if client.wait_for_service(timeout_sec=2.0):
                future = client.call_async(srv_type.Request())
                end = time.monotonic() + 2.0
                while not future.done() and time.monotonic() < end:
                    time.sleep(0.01)
                if future.done():
                    return True
                client.remove_pending_request(future)
        finally:
            node.destroy_client(client)
    return False


def rows_match(rows: np.ndarray, published: list[np.ndarray]) -> bool:
    """Every row equals (in float32) one of the published vectors."""
    pub = {tuple(np.asarray(v, np.float32).tolist()) for v in published}
    return all(tuple(np.asarray(r, np.float32).tolist()) in pub for r in rows)

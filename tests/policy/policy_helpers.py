"""Helpers for the policy tests: tiny Evo-1 checkpoints in robot units, a sensor publisher node."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image, JointState

from evo1_ros.control.limits import ARM_JOINTS, GRIPPER_JOINT, GripperPulseMap, JointLimits
from evo1_ros.control.units import to_convention
from evo1_ros.ros.image import numpy_to_image

REPO = Path(__file__).resolve().parents[2]
REFERENCE_DIR = REPO / "tests" / "data" / "evo1_reference_A"
ALL_JOINTS = (*ARM_JOINTS, GRIPPER_JOINT)
# Where the tiny model's actions lie (rad): a pose a little away from zero, so motion is visible,
# and inside the first-run caps (start distance 0.3 rad, 0.1 rad per step).
ACTION_CENTER = np.array([0.2, -0.15, -0.2, 0.15, 0.2, -0.15, 0.3])
ACTION_HALF_RANGE = np.array([0.01] * 6 + [0.05])


def make_checkpoint(
    directory: Path,
    joints: tuple[str, ...] = ALL_JOINTS,
    units: str = "rep103",
    fps: float | None = 10.0,
    nan_weights: bool = False,
) -> Path:
    """The reference fixture's tiny Evo-1 weights, saved in project format with REP-103 (or official
    xArm6) norm stats for `joints`; `training.json` records `fps` unless None."""
    from evo1_ros.model import Evo1Policy, NormStats

    policy = Evo1Policy.from_official(REFERENCE_DIR)
    idx = [ALL_JOINTS.index(j) for j in joints]
    limits = JointLimits.from_yaml().subset(joints)
    lo_s, hi_s = limits.lower.copy(), limits.upper.copy()
    lo_s[np.isinf(lo_s)], hi_s[np.isinf(hi_s)] = -6.3, 6.3
    lo_a = ACTION_CENTER[idx] - ACTION_HALF_RANGE[idx]
    hi_a = ACTION_CENTER[idx] + ACTION_HALF_RANGE[idx]
    if units != "rep103":
        gripper = GripperPulseMap()
        conv = [to_convention(v, joints, units, gripper) for v in (lo_s, hi_s, lo_a, hi_a)]
        lo_s, hi_s = np.minimum(conv[0], conv[1]), np.maximum(conv[0], conv[1])
        lo_a, hi_a = np.minimum(conv[2], conv[3]), np.maximum(conv[2], conv[3])
    stats = NormStats(state_min=lo_s, state_max=hi_s, action_min=lo_a, action_max=hi_a)
    out = Evo1Policy(policy.model, policy.tokenizer, stats)
    if nan_weights:
        import torch

        with torch.no_grad():
            for p in out.model.action_head.parameters():
                p.fill_(float("nan"))
                break
    out.save_pretrained(directory)
    if fps is not None:
        (directory / "training.json").write_text(json.dumps({"fps": fps}))
    return directory


def ros_time(seconds: float) -> Time:
    ns = int(seconds * 1e9)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class SensorPublisher:
    """Publishes camera images and (optionally) joint states from a test node, like a robot would.

    Each stream can be stopped, given a wrong encoding/size, or stamped in the past, to provoke the
    policy node's holds. Runs on its own thread (so the test's executor stays free for the node).
    """

    def __init__(
        self,
        node,
        cameras: tuple[str, ...] = ("base", "wrist"),
        size: tuple[int, int] = (64, 64),
        image_rate: float = 15.0,
        joint_rate: float = 50.0,
        joints: tuple[str, ...] = ALL_JOINTS,
        publish_joints: bool = True,
    ) -> None:
        self.node = node
        self.cameras = cameras
        self.size = size
        self.encoding = {c: "rgb8" for c in cameras}
        self.paused: set[str] = set()
        self.stamp_offset: dict[str, float] = {}
        self.joints = joints
        self.positions = np.zeros(len(joints))
        self.image_pubs = {c: node.create_publisher(Image, f"/cameras/{c}/image_raw", 5) for c in cameras}
        self.joint_pub = (
            node.create_publisher(JointState, "/xarm/joint_states", 10) if publish_joints else None
        )
        rng = np.random.default_rng(0)
        self.frames = {c: rng.integers(0, 256, (*size, 3), dtype=np.uint8) for c in cameras}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(image_rate, self._images), daemon=True)]
        if publish_joints:
            self._threads.append(
                threading.Thread(target=self._loop, args=(joint_rate, self._joints), daemon=True)
            )
        for t in self._threads:
            t.start()

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _loop(self, rate: float, fn) -> None:
        while not self._stop.wait(1.0 / rate):
            fn()

    def _images(self) -> None:
        now = self._now()
        for c in self.cameras:
            if c in self.paused:
                continue
            frame = self.frames[c]
            enc = self.encoding[c]
            if enc == "mono8":
                frame = frame[:, :, 0]
            if frame.shape[:2] != self.size:
                frame = np.resize(frame, (*self.size, *frame.shape[2:]))
            self.image_pubs[c].publish(
                numpy_to_image(frame, enc, ros_time(now - self.stamp_offset.get(c, 0.0)))
            )

    def _joints(self) -> None:
        if "joint_states" in self.paused:
            return
        msg = JointState()
        msg.header.stamp = ros_time(self._now() - self.stamp_offset.get("joint_states", 0.0))
        msg.name = list(self.joints)
        msg.position = self.positions.tolist()
        self.joint_pub.publish(msg)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)


def wait_for(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())

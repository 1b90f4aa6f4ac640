"""Synthetic bags written with rosbags (cameras, joint states, accepted trajectories), and bag comparison."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml

from recording.bag.bagio import BagWriter, QosSpec, open_bag, typestore

JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "drive_joint")
CAMERAS = ("cam0", "cam1")
WIDTH, HEIGHT = 64, 48
T0_NS = 1_000_000_000_000  # bag start: 1000 s (a multiple of every frame period used here)


def _time(ts, t_ns: int):
    return ts.types["builtin_interfaces/msg/Time"](
        sec=int(t_ns // 1_000_000_000), nanosec=int(t_ns % 1_000_000_000)
    )


def _header(ts, t_ns: int, frame: str = ""):
    return ts.types["std_msgs/msg/Header"](stamp=_time(ts, t_ns), frame_id=frame)


def image_msg(ts, t_ns: int, k: int, cam: int, width: int = WIDTH, height: int = HEIGHT, noise: bool = False):
    if noise:
        rng = np.random.default_rng(k * 7 + cam)
        arr = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        arr = np.empty((height, width, 3), dtype=np.uint8)
        arr[...] = ((40 + 3 * k) % 256, 80 + 60 * cam, (200 - 2 * k) % 256)
    return ts.types["sensor_msgs/msg/Image"](
        header=_header(ts, t_ns, f"cam{cam}"),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=arr.reshape(-1),
    )


def joint_state_msg(ts, t_ns: int, q: np.ndarray):
    return ts.types["sensor_msgs/msg/JointState"](
        header=_header(ts, t_ns),
        name=list(JOINTS),
        position=np.asarray(q, dtype=np.float64),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )


def trajectory_msg(ts, start_ns: int, q: np.ndarray):
    """A one-point accepted trajectory (target ``q`` held from ``start_ns``)."""
    dur = ts.types["builtin_interfaces/msg/Duration"](sec=0, nanosec=0)
    pt = ts.types["trajectory_msgs/msg/JointTrajectoryPoint"](
        positions=np.asarray(q, dtype=np.float64),
        velocities=np.zeros(0),
        accelerations=np.zeros(0),
        effort=np.zeros(0),
        time_from_start=dur,
    )
    return ts.types["trajectory_msgs/msg/JointTrajectory"](
        header=_header(ts, start_ns), joint_names=list(JOINTS), points=[pt]
    )


def _status(ts, cls, t_ns: int, span):
    """A RecorderStatus with every field set (rosbags dataclasses have no defaults)."""
    import dataclasses

    values = {}
    for f in dataclasses.fields(cls):
        if f.name == "header":
            values[f.name] = _header(ts, t_ns)
        elif f.name == "state":
            values[f.name] = 1 if span else 0
        elif f.name == "task":
            values[f.name] = span[2] if span else ""
        elif f.type in ("str", str) or "str" in str(f.type):
            values[f.name] = ""
        elif "ndarray" in str(f.type) or "list" in str(f.type):
            values[f.name] = np.zeros(0) if "float" in str(f.type) else []
        elif "float" in str(f.type):
            values[f.name] = 0.0
        else:
            values[f.name] = 0
    return cls(**values)


def state_at(k: int) -> np.ndarray:
    return 0.01 * k + 0.1 * np.arange(len(JOINTS))


def write_teleop_bag(
    path: Path,
    *,
    seconds: float = 2.0,
    camera_hz: float = 30.0,
    state_hz: float = 100.0,
    action_hz: float = 10.0,
    action_fn=None,
    storage: str = "mcap",
    noise: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
    reliable: bool = False,
    episodes: list[tuple[float, float, str]] | None = None,
) -> Path:
    """A teleop-like bag: 2 cameras, joint states and accepted one-point trajectories, log = header time.

    ``action_fn(state) -> target`` gives the commanded target from the measured state (a stand-in
    policy); default: the state plus 0.05 rad.
    """
    ts = typestore()
    action_fn = action_fn or (lambda q: q + 0.05)
    w = BagWriter(path, storage)
    sensor = QosSpec("reliable" if reliable else "best_effort", "volatile", 5)
    cams = [f"/cameras/{c}/image_raw" for c in CAMERAS]
    for c in cams:
        w.add_topic(c, "sensor_msgs/msg/Image", sensor)
    w.add_topic("/xarm/joint_states", "sensor_msgs/msg/JointState", QosSpec("reliable", "volatile", 10))
    w.add_topic(
        "/xarm/accepted_trajectory",
        "trajectory_msgs/msg/JointTrajectory",
        QosSpec("reliable", "volatile", 10),
    )
    events: list[tuple[int, int, str, object]] = []  # (t, order, topic, msg)
    if episodes is not None:  # /recorder/status at 5 Hz: RECORDING inside the (start s, end s, task) spans
        w.add_topic("/recorder/status", "evo1_msgs/msg/RecorderStatus", QosSpec())
        status_t = ts.types["evo1_msgs/msg/RecorderStatus"]
        for k in range(int(seconds * 5) + 1):
            t = T0_NS + 5_000_000 + k * 200_000_000
            span = next((e for e in episodes if e[0] <= (t - T0_NS) * 1e-9 < e[1]), None)
            msg = _status(ts, status_t, t, span)
            events.append((t, 3, "/recorder/status", msg))
    end = T0_NS + int(seconds * 1e9)
    for rate, kind in ((camera_hz, "cam"), (state_hz, "state"), (action_hz, "action")):
        period = int(1e9 / rate)
        # offsets keep messages off the frame ticks (a tie would depend on the order of equal stamps)
        t, k = T0_NS + {"cam": 3_000_000, "state": 1_000_000, "action": 7_000_000}[kind], 0
        while t < end:
            if kind == "cam":
                for i, c in enumerate(cams):
                    events.append((t + i * 100_000, 0, c, image_msg(ts, t, k, i, width, height, noise)))
            elif kind == "state":
                events.append((t, 1, "/xarm/joint_states", joint_state_msg(ts, t, state_at(k // 10))))
            else:
                q = state_at(int((t - T0_NS) / 1e8))
                events.append((t, 2, "/xarm/accepted_trajectory", trajectory_msg(ts, t, action_fn(q))))
            t += period
            k += 1
    for t, _, topic, msg in sorted(events, key=lambda e: (e[0], e[1])):
        w.write(topic, t, ts.serialize_cdr(msg, type(msg).__msgtype__))
    w.close()
    return path


def call(node, srv_type, name: str, request=None, timeout: float = 30.0):
    """Call a service from a node spun by the test executor; returns the response (asserts it came)."""
    client = node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=15.0), f"service {name} not available"
        future = client.call_async(request if request is not None else srv_type.Request())
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert future.done(), f"service {name} did not answer within {timeout} s"
        return future.result()
    finally:
        node.destroy_client(client)


def read_all(path: Path) -> list[tuple[str, bytes]]:
    """(topic, raw CDR) of every message in log order."""
    with open_bag(path) as bag:
        return [(c.topic, bytes(raw)) for c, _, raw in bag.messages(bag.connections)]


def per_topic(messages: list[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for topic, raw in messages:
        out.setdefault(topic, []).append(raw)
    return out


def converter_params(features_file: Path, **overrides) -> dict:
    """Recorder parameters for the synthetic bags (cam0/cam1 at 64x48, H.264)."""
    from recording.bag.to_lerobot import recorder_parameters

    return recorder_parameters(
        None,
        {
            "features_file": str(features_file),
            "cameras": list(CAMERAS),
            "image_width": WIDTH,
            "image_height": HEIGHT,
            "camera_max_age": 0.25,
            "state_max_age": 0.25,
            "fps": 10,
            **overrides,
        },
    )


def write_features(path: Path) -> Path:
    cfg = {
        "robot_type": "xarm6",
        "fps": 10,
        "state": {"names": list(JOINTS)},
        "action": {"names": list(JOINTS)},
        "cameras": {},
        "extra": {},
        "video": {"codec": "libx264", "gop": 2},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path

"""Bag replay timing and bag -> LeRobot throughput (issue 11 benchmark).

1. Writes a bag like a teleop session: 2 cameras x 30 Hz x SIZE^2 rgb8 (reliable) + 100 Hz joint
   states + 10 Hz accepted trajectories (MCAP).
2. Replay timing: `evo1 bag play` (the real player, in this process) publishes it while `evo1 bag
   record` (a separate process, the real recorder) records it; the timing error of message k is
   (recorded_k - recorded_0) - (bag_k - bag_0), per topic. Also the player's own publish lateness.
   Target: p99 <= 5 ms.
3. to-lerobot throughput (frames/s, wall) next to the recorder node's live path on the same data:
   the bag is played into a live `recorder` node (in this process, real DDS) which records one
   episode; both use recording/recorder/frame_assembly.py and the same writer/codec.

Writes bench/results/bag_replay.json. Example:
  .venv/bin/python bench/bag_replay.py --seconds 10 --size 448 --codec libx264
(run with scripts/test.sh's environment: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, the SHM profile)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recording.bag.bagio import BagWriter, QosSpec, open_bag, typestore  # noqa: E402

JOINTS = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "drive_joint"]
CAMS = ["base", "wrist"]


def write_bag(path: Path, seconds: float, size: int) -> Path:
    ts = typestore()
    T = ts.types
    w = BagWriter(path)
    for c in CAMS:
        w.add_topic(f"/cameras/{c}/image_raw", "sensor_msgs/msg/Image", QosSpec("reliable", "volatile", 5))
    w.add_topic("/xarm/joint_states", "sensor_msgs/msg/JointState", QosSpec("reliable", "volatile", 10))
    w.add_topic("/xarm/accepted_trajectory", "trajectory_msgs/msg/JointTrajectory", QosSpec())
    t0 = 1_000_000_000_000
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    events = []
    for rate, kind in ((30.0, "cam"), (100.0, "js"), (10.0, "traj")):
        for k in range(int(seconds * rate)):
            events.append(
                (t0 + int(k * 1e9 / rate) + {"cam": 3, "js": 1, "traj": 7}[kind] * 1_000_000, kind, k)
            )
    for t, kind, k in sorted(events):
        stamp = T["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9)
        header = T["std_msgs/msg/Header"](stamp=stamp, frame_id="")
        q = 0.1 + 0.001 * (t - t0) / 1e7 * np.ones(len(JOINTS))
        if kind == "cam":
            for i, c in enumerate(CAMS):
                img = np.roll(base, k + 17 * i, axis=1)
                msg = T["sensor_msgs/msg/Image"](
                    header=header,
                    height=size,
                    width=size,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=size * 3,
                    data=img.reshape(-1),
                )
                w.write(
                    f"/cameras/{c}/image_raw", t + i * 100_000, ts.serialize_cdr(msg, "sensor_msgs/msg/Image")
                )
        elif kind == "js":
            msg = T["sensor_msgs/msg/JointState"](
                header=header, name=JOINTS, position=q, velocity=np.zeros(0), effort=np.zeros(0)
            )
            w.write("/xarm/joint_states", t, ts.serialize_cdr(msg, "sensor_msgs/msg/JointState"))
        else:
            dur = T["builtin_interfaces/msg/Duration"](sec=0, nanosec=0)
            pt = T["trajectory_msgs/msg/JointTrajectoryPoint"](
                positions=q + 0.05,
                velocities=np.zeros(0),
                accelerations=np.zeros(0),
                effort=np.zeros(0),
                time_from_start=dur,
            )
            msg = T["trajectory_msgs/msg/JointTrajectory"](header=header, joint_names=JOINTS, points=[pt])
            w.write(
                "/xarm/accepted_trajectory", t, ts.serialize_cdr(msg, "trajectory_msgs/msg/JointTrajectory")
            )
    w.close()
    return path


def log_times(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, list[int]] = {}
    with open_bag(path) as bag:
        for c, t, _ in bag.messages(bag.connections):
            out.setdefault(c.topic, []).append(t)
    return {k: np.asarray(v, np.int64) for k, v in out.items()}


def pct(a: np.ndarray) -> dict[str, float]:
    a = np.abs(np.asarray(a, float))
    return {
        "p50_ms": float(np.percentile(a, 50) * 1e3),
        "p99_ms": float(np.percentile(a, 99) * 1e3),
        "max_ms": float(a.max() * 1e3),
        "n": int(a.size),
    }


_STAMPER = """
import json, signal, sys, threading, time, importlib
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
out, topics = sys.argv[1], sys.argv[2:]
rclpy.init()
node = rclpy.create_node("bench_stamper")
stamps = {t: [] for t in topics}
types = {"Image": "sensor_msgs.msg", "JointState": "sensor_msgs.msg", "JointTrajectory": "trajectory_msgs.msg"}
for t in topics:
    name = "Image" if "image" in t else ("JointState" if "joint_states" in t else "JointTrajectory")
    cls = getattr(importlib.import_module(types[name]), name)
    node.create_subscription(cls, t, lambda raw, t=t: stamps[t].append(time.perf_counter_ns()),
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE), raw=True)
stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
print("ready", flush=True)
while not stop.is_set():
    rclpy.spin_once(node, timeout_sec=0.05)
json.dump(stamps, open(out, "w"))
"""


def replay_timing(bag: Path, tmp: Path) -> dict:
    """The real player in this process; a minimal raw subscriber in another stamps each arrival."""
    import rclpy

    from evo1_ros.nodes.bag_play import BagPlayer, PlayOptions

    topics = sorted(log_times(bag))
    stamps_file = tmp / "stamps.json"
    sub = subprocess.Popen(
        [sys.executable, "-c", _STAMPER, str(stamps_file), *topics], stdout=subprocess.PIPE, text=True
    )
    sub.stdout.readline()
    rclpy.init()
    node = rclpy.create_node("bench_player")
    try:
        player = BagPlayer(node, bag, PlayOptions(wait_for_subscribers=60.0))
        stats = player.play()
        time.sleep(2.0)  # let the subscriber drain its queues before it is stopped
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    sub.send_signal(2)
    sub.wait(timeout=60)
    got = {k: np.asarray(v, np.int64) for k, v in json.loads(stamps_file.read_text()).items()}
    src = log_times(bag)
    # one common origin: the first message of the bag and its arrival
    first = min(src, key=lambda k: src[k][0])
    b0, r0 = src[first][0], got[first][0] if len(got[first]) else 0
    errors, lost = [], {}
    for topic, t in src.items():
        r = got.get(topic, np.zeros(0, np.int64))
        lost[topic] = int(len(t) - len(r))
        n = min(len(t), len(r))
        errors.append(((r[:n] - r0) - (t[:n] - b0)) * 1e-9)
    err = np.concatenate(errors)
    per_topic = {k: pct(e - np.median(err)) for k, e in zip(src, errors) if len(e)}
    return {
        "receive_error": pct(err - np.median(err)),
        "receive_error_by_topic": per_topic,
        "publish_lateness": pct(np.asarray(stats.lateness)),
        "messages": int(sum(len(v) for v in src.values())),
        "lost": lost,
    }


def recorder_params(size: int, codec: str) -> dict:
    feats = {
        "robot_type": "xarm6",
        "fps": 30,
        "state": {"names": JOINTS},
        "action": {"names": JOINTS},
        "cameras": {},
        "extra": {},
        "video": {"codec": codec, "gop": 2},
    }
    return {
        "feats": feats,
        "overrides": {
            "cameras": CAMS,
            "image_width": size,
            "image_height": size,
            "fps": 30,
            "reset_time": 0.0,
            "episode_time_limit": 0.0,
            "camera_max_age": 0.2,
            "state_max_age": 0.1,
        },
    }


def offline(bag: Path, tmp: Path, size: int, codec: str) -> dict:
    from recording.bag.to_lerobot import ConvertOptions, convert, recorder_parameters

    cfg = recorder_params(size, codec)
    (tmp / "f.yaml").write_text(yaml.safe_dump(cfg["feats"]))
    params = recorder_parameters(None, {**cfg["overrides"], "features_file": str(tmp / "f.yaml")})
    t0 = time.perf_counter()
    rep = convert([bag], tmp / "offline", ConvertOptions(params, task="bench"))
    wall = time.perf_counter() - t0
    return {"frames": rep.frames, "wall_s": wall, "frames_per_s": rep.frames / wall, "dropped": rep.dropped}


def live(bag: Path, tmp: Path, size: int, codec: str) -> dict:
    """The `recorder` node in its own process records the replayed bag (one episode, saved)."""
    import rclpy
    from std_srvs.srv import Trigger

    from evo1_msgs.srv import StartEpisode
    from evo1_ros.nodes.bag_play import BagPlayer, PlayOptions
    from recording.dataset.reader import LeRobotReader

    cfg = recorder_params(size, codec)
    over = {**cfg["overrides"], "features_file": str(tmp / "f.yaml"), "dataset_dir": str(tmp / "live")}
    argv = [str(Path(sys.executable).parent / "recorder"), "--ros-args"]
    for k, v in over.items():
        argv += ["-p", f"{k}:={json.dumps(v) if isinstance(v, list) else v}"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rclpy.init()
    client = rclpy.create_node("bench_client")

    def call(srv, name, req, timeout=300.0):
        c = client.create_client(srv, name)
        if not c.wait_for_service(timeout_sec=60):
            raise RuntimeError(f"{name} not available")
        f = c.call_async(req)
        rclpy.spin_until_future_complete(client, f, timeout_sec=timeout)
        return f.result()

    try:
        player = BagPlayer(client, bag, PlayOptions(wait_for_subscribers=60.0))
        res = call(StartEpisode, "/recorder/start_episode", StartEpisode.Request(task="bench"))
        assert res.success, res.message
        t0 = time.perf_counter()
        player.play()
        res = call(Trigger, "/recorder/save_episode", Trigger.Request())
        wall = time.perf_counter() - t0
    finally:
        client.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(2)
        proc.wait(timeout=60)
    frames = LeRobotReader(tmp / "live").episode_length(0) if res.success else 0
    return {"frames": frames, "wall_s": wall, "frames_per_s": frames / wall, "save_message": res.message}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--codec", default="libx264")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "bag_replay.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bag_bench_"))
    try:
        t0 = time.perf_counter()
        bag = write_bag(tmp / "bag", args.seconds, args.size)
        write_s = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in bag.iterdir()) / 1e6
        timing = replay_timing(bag, tmp)
        off = offline(bag, tmp, args.size, args.codec)
        liv = live(bag, tmp, args.size, args.codec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "settings": vars(args) | {"out": str(args.out)},
        "machine": {
            "cpus": os.cpu_count(),
            "load_1min": os.getloadavg()[0],
            "python": platform.python_version(),
        },
        "bag": {"write_s": write_s, "size_mb": size_mb},
        "replay": timing,
        "to_lerobot": off,
        "recorder_live": liv,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    r = timing
    print(
        f"bag: {args.seconds:g} s, 2 x 30 Hz {args.size}^2 + 100 Hz joints, {size_mb:.0f} MB (written in {write_s:.1f} s)"
    )
    print(
        f"replay receive error  p50 {r['receive_error']['p50_ms']:.2f} ms  p99 {r['receive_error']['p99_ms']:.2f} ms  "
        f"max {r['receive_error']['max_ms']:.2f} ms  (lost {sum(r['lost'].values())})"
    )
    print(
        f"player publish lateness p50 {r['publish_lateness']['p50_ms']:.2f} ms  p99 {r['publish_lateness']['p99_ms']:.2f} ms"
    )
    print(f"to-lerobot: {off['frames']} frames in {off['wall_s']:.1f} s = {off['frames_per_s']:.1f} frames/s")
    print(
        f"recorder live: {liv['frames']} frames in {liv['wall_s']:.1f} s = {liv['frames_per_s']:.1f} frames/s "
        f"(real time + save; {liv['save_message']})"
    )
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Regenerate tests/data/replay_policy_bag: what evo1_policy sees on the real stack, recorded by `evo1 bag`.

The project's own parts only: the loopback xArm controller, the real xarm_driver node talking to it
through the xArm SDK, synthetic cameras (a moving gradient per camera, header-stamped like a camera
driver), and a slow teleop-like motion around a work pose commanded on /xarm/joint_trajectory. The
bag records the policy's inputs (cameras, joint states, driver status) and the accepted commands,
MCAP, a few seconds at small image sizes so it stays well under a megabyte.

    .venv/bin/python scripts/make_replay_bag.py [--out tests/data/replay_policy_bag] [--seconds 4]

(Run through scripts/test.sh's environment, or with ROS_DOMAIN_ID set to a free domain.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# The tiny test model's actions lie near this pose (tests/fixtures/policy.py ACTION_CENTER);
# the policy refuses a first point farther than max_start_distance from the measured state.
WORK_POSE = [0.2, -0.15, -0.2, 0.15, 0.2, -0.15]
CAMERAS = ("base", "wrist")
TOPICS = [
    "/cameras/base/image_raw",
    "/cameras/wrist/image_raw",
    "/xarm/joint_states",
    "/xarm/driver_status",
    "/xarm/accepted_trajectory",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "replay_policy_bag")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--camera-rate", type=float, default=10.0)
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--height", type=int, default=32)
    args = ap.parse_args(argv)

    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from evo1_ros.driver.arm_driver import DriverState
    from evo1_ros.nodes.bag_record import BagRecordNode
    from evo1_ros.nodes.xarm_driver import XArmDriverNode
    from evo1_ros.ros.image import numpy_to_image
    from evo1_ros.ros.qos import COMMAND, SENSOR
    from evo1_ros.ros.stamps import seconds_to_duration
    from evo1_ros.sim.loopback_controller import LoopbackController
    from evo1_ros.sim.loopback_host import free_loopback_host
    from recording.bag.bagio import BagWriter, dump_counts

    if args.out.exists():
        shutil.rmtree(args.out)
    ctrl = LoopbackController(host=free_loopback_host()).start()
    rclpy.init()
    executor = MultiThreadedExecutor(num_threads=4)
    stop = threading.Event()
    spinner = threading.Thread(
        target=lambda: [executor.spin_once(timeout_sec=0.05) for _ in iter(stop.is_set, True)], daemon=True
    )
    driver = XArmDriverNode(namespace="/xarm", parameter_overrides=[Parameter("robot_ip", value=ctrl.host)])
    pub = rclpy.create_node("replay_bag_source")
    writer = BagWriter(args.out)
    for n in (driver, pub):
        executor.add_node(n)
    spinner.start()
    try:
        deadline = time.monotonic() + 30
        while driver.driver.state != DriverState.READY and time.monotonic() < deadline:
            time.sleep(0.05)
        if driver.driver.state != DriverState.READY:
            raise SystemExit(f"driver not READY: {driver.driver.status()}")
        cams = {c: pub.create_publisher(Image, f"/cameras/{c}/image_raw", SENSOR) for c in CAMERAS}
        traj = pub.create_publisher(JointTrajectory, "/xarm/joint_trajectory", COMMAND)
        names = [f"joint{i}" for i in range(1, 7)]

        def command(q: list[float], seconds: float) -> None:
            pt = JointTrajectoryPoint(positions=[float(v) for v in q])
            pt.time_from_start = seconds_to_duration(seconds)
            traj.publish(JointTrajectory(joint_names=names, points=[pt]))

        command(WORK_POSE, 3.0)  # move to the work pose before recording
        time.sleep(3.5)
        rec = BagRecordNode(writer, TOPICS, discovery_period=0.1)
        executor.add_node(rec)
        deadline = time.monotonic() + 20
        while set(rec.subscribed) != set(TOPICS) and time.monotonic() < deadline:
            time.sleep(0.05)
        if set(rec.subscribed) != set(TOPICS):
            raise SystemExit(f"not all topics appeared: {sorted(set(TOPICS) - set(rec.subscribed))}")
        t0 = time.monotonic()
        k = 0
        yy, xx = np.mgrid[0 : args.height, 0 : args.width]
        while (now := time.monotonic() - t0) < args.seconds:
            if k % 5 == 0:  # 2 Hz teleop-like command: a slow sine around the work pose
                q = np.asarray(WORK_POSE) + 0.03 * np.sin(0.5 * now + np.arange(6))
                command(q.tolist(), 0.5)
            stamp = pub.get_clock().now().to_msg()
            for i, (c, p) in enumerate(cams.items()):
                img = np.stack(
                    [(xx * 4 + 10 * k) % 256, (yy * 6 + 40 * i) % 256, np.full_like(xx, 90 * i)], -1
                )
                p.publish(numpy_to_image(img.astype(np.uint8), "rgb8", stamp=stamp, frame_id=f"{c}_camera"))
            k += 1
            time.sleep(max(0.0, t0 + k / args.camera_rate - time.monotonic()))
        time.sleep(0.3)
    finally:
        writer.close()
        stop.set()
        spinner.join(timeout=5)
        for n in list(executor.get_nodes()):
            executor.remove_node(n)
            n.destroy_node()
        rclpy.try_shutdown()
        ctrl.stop()
    print(dump_counts(writer.counts, writer.paths))
    size = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"{size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

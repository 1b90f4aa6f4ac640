"""Servo streaming benchmark: achieved rate, period error and smoothness of the xarm_driver stream.

Runs the loopback controller in its own process and the xarm_driver node in this one (with its
100 Hz joint_states timer and a subscriber on them), streams a slow sine trajectory, and reports
for each servo_rate and case the achieved rate, the p50/p99/max absolute period error and the p99
period of the streaming thread, the rate of servo commands sent, and the largest velocity change
between consecutive streamed commands (v = dq / real cycle time; the 4 rad/s^2 cap allows
4 * period, 0.02 rad/s at 200 Hz, so more than that means the stream stalled).

Cases (issue 13 item 3: RS-485 gripper calls must not stall the servo stream):
  no_gripper          gripper:=false, no tool-bus traffic
  gripper_slow_bus    gripper traffic (a drive_joint sine: a send and a read every 0.1 s) with
                      a slow tool bus (--tool-bus-delay, default 15 ms per RS-485 reply), the
                      gripper on its own SDK connection (the driver's default)
  gripper_slow_bus_shared   the same on one shared SDK connection (the layout before the fix)

    .venv/bin/python bench/driver_servo.py [--rates 200 250] [--seconds 10] [--cases ...]

Prints a table and writes bench/results/driver_servo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


CASES = {
    "no_gripper": {"gripper": False, "connection": "separate", "slow_bus": False},
    "gripper_slow_bus": {"gripper": True, "connection": "separate", "slow_bus": True},
    "gripper_slow_bus_shared": {"gripper": True, "connection": "shared", "slow_bus": True},
}


def velocity_changes(log: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """|v_k - v_(k-1)| per cycle (largest over arm joints), v_k = (q_k - q_(k-1)) / (t_k - t_(k-1))."""
    t = np.array([entry[0] for entry in log])
    q = np.array([entry[1] for entry in log])
    v = np.diff(q, axis=0) / np.diff(t)[:, None]
    return np.max(np.abs(np.diff(v, axis=0)), axis=1) if len(v) > 1 else np.zeros(1)


def run_rate(rate: float, seconds: float, domain: int, case: str, tool_bus_delay: float) -> dict:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import JointState

    from evo1_ros.nodes.xarm_driver import XArmDriverNode
    from evo1_ros.sim.loopback_host import free_loopback_host

    spec = CASES[case]
    gripper = bool(spec["gripper"])
    delay = tool_bus_delay if spec["slow_bus"] else 0.0
    host = free_loopback_host()
    ctrl = subprocess.Popen(
        [sys.executable, "-m", "evo1_ros.sim.loopback_main", "--host", host, "--tool-bus-delay", str(delay)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    try:
        time.sleep(1.0)
        node = XArmDriverNode(
            context=ctx,
            namespace="/xarm",
            parameter_overrides=[
                Parameter("robot_ip", value=host),
                Parameter("servo_rate", value=float(rate)),
                Parameter("joint_state_rate", value=100.0),
                Parameter("gripper", value=gripper),
                Parameter("gripper_connection", value=str(spec["connection"])),
            ],
        )
        log: list[tuple[float, np.ndarray]] = []
        recording = threading.Event()
        node.driver.add_command_listener(
            lambda now, dt, cmd: log.append((now, cmd[:6].copy())) if recording.is_set() else None
        )
        listener = rclpy.create_node("bench_listener", context=ctx)
        received = []
        listener.create_subscription(
            JointState, "/xarm/joint_states", lambda m: received.append(time.monotonic()), 10
        )
        executor = MultiThreadedExecutor(num_threads=4, context=ctx)
        executor.add_node(node)
        executor.add_node(listener)
        spin = threading.Thread(target=executor.spin, daemon=True)
        spin.start()
        deadline = time.monotonic() + 15
        while node.driver.state.value != "READY" and time.monotonic() < deadline:
            time.sleep(0.05)
        if node.driver.state.value != "READY":
            raise RuntimeError(f"driver not ready: {node.driver.status()}")
        # A slow 0.2 rad sine on joint1 for the whole run, so every cycle sends a new target; with
        # the gripper, drive_joint follows a 0.5 Hz sine (a gripper send every 0.1 s).
        t = np.linspace(0.2, seconds + 1.0, int((seconds + 1.0) * 10))
        q = 0.2 * np.sin(2 * np.pi * 0.25 * t)
        if gripper:
            g = 0.4 + 0.3 * np.sin(2 * np.pi * 0.5 * t)
            node.driver.submit(
                ["joint1", "drive_joint"], t.tolist(), [[a, b] for a, b in zip(q, g)], None, None
            )
        else:
            node.driver.submit(["joint1"], t.tolist(), [[v] for v in q], None, None)
        time.sleep(0.5)
        recording.set()
        before = node.driver.status()
        sent0, js0 = before.commands_sent, len(received)
        t0 = time.monotonic()
        cpu0 = time.process_time()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        recording.clear()
        after = node.driver.status()
        periods = np.array(after.periods[-int(rate * seconds) :])
        err = np.abs(periods - 1.0 / rate) * 1e3
        dv = velocity_changes(log)
        result = {
            "case": case,
            "servo_rate_target_hz": rate,
            "gripper": gripper,
            "gripper_connection": spec["connection"] if gripper else "",
            "tool_bus_delay_ms": delay * 1e3,
            "achieved_rate_hz": float(len(periods) / periods.sum()),
            "commands_sent_per_s": (after.commands_sent - sent0) / elapsed,
            "period_error_p50_ms": float(np.percentile(err, 50)),
            "period_error_p99_ms": float(np.percentile(err, 99)),
            "period_error_max_ms": float(err.max()),
            "period_p99_ms": float(np.percentile(periods, 99) * 1e3),
            "period_max_ms": float(periods.max() * 1e3),
            "max_dv_between_commands_rad_s": float(np.max(dv)),
            "p99_dv_between_commands_rad_s": float(np.percentile(dv, 99)),
            "dv_allowed_by_cap_rad_s": 4.0 / rate,
            "gripper_polls": after.gripper_polls - before.gripper_polls,
            "joint_states_hz": (len(received) - js0) / elapsed,
            "send_failures": after.send_failures - before.send_failures,
            "late_cycles": after.late_cycles - before.late_cycles,  # > max_step_periods periods
            "driver_process_cpu_share": cpu / elapsed,
            "seconds": elapsed,
        }
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
        return result
    finally:
        ctx.try_shutdown()
        ctrl.terminate()
        ctrl.wait(timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0], help="servo rates (Hz)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time per rate and case")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES), help="cases to run")
    parser.add_argument(
        "--tool-bus-delay",
        type=float,
        default=0.015,
        help="tool RS-485 reply delay of the slow-bus cases (s)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "driver_servo.json")
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="bench_ros_log_"))
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))
    domain = 210 + os.getpid() % 20
    results = [
        run_rate(rate, args.seconds, domain, case, args.tool_bus_delay)
        for rate in args.rates
        for case in args.cases
    ]
    cols = [
        "case",
        "servo_rate_target_hz",
        "achieved_rate_hz",
        "commands_sent_per_s",
        "period_error_p50_ms",
        "period_error_p99_ms",
        "period_error_max_ms",
        "period_p99_ms",
        "period_max_ms",
        "max_dv_between_commands_rad_s",
        "p99_dv_between_commands_rad_s",
        "dv_allowed_by_cap_rad_s",
        "joint_states_hz",
        "send_failures",
        "late_cycles",
        "driver_process_cpu_share",
    ]
    print(" | ".join(c for c in cols))
    for r in results:
        print(" | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    print(f"machine load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    summary = {"machine": f"{os.cpu_count()} cores", "load_average_1min": load, "results": results}
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Servo streaming benchmark: achieved rate, period error and smoothness of the xarm_driver stream.

Runs the loopback controller in its own process and the xarm_driver node in this one (with its
100 Hz joint_states timer and a subscriber on them), streams a slow sine trajectory, and reports
for each streamer, servo_rate, load and case the achieved rate, the p50/p99/max absolute period
error and the p99 period of the streaming loop, late cycles, the rate of servo commands sent, the
CPU of the driver process, of the streaming side (the stream thread, or the streamer process) and
of the controller, and the largest velocity change between consecutive streamed commands
(v = dq / real cycle time; the 4 rad/s^2 cap allows 4 * period, 0.02 rad/s at 200 Hz, so more than
that means the stream stalled).

Streamers (issue 15): "thread" (the in-process loop) and "process" (the streamer process with its
own SDK connection, SCHED_FIFO when permitted), side by side in one run.
Loads: "quiet" (whatever else the machine runs: the load average is reported with each figure)
and "neighbour" (plus one CPU-burning process per core at normal priority, the way a recorder
encoding cameras would).
Floor: the same deadline loop doing nothing but sleep-to-deadline, in a process of its own, in
the same conditions: "floor_other" as a normal process without spin (the thread loop's timing),
"floor_fifo" with the process streamer's SCHED_FIFO priority and spin. The gap between a streamer
and its floor is the streamer's own cost; the floor is what the machine allows.

Cases (issue 13 item 3: RS-485 gripper calls must not stall the servo stream):
  no_gripper          gripper:=false, no tool-bus traffic
  gripper_slow_bus    gripper traffic (a drive_joint sine: a send and a read every 0.1 s) with
                      a slow tool bus (--tool-bus-delay, default 15 ms per RS-485 reply), the
                      gripper on its own SDK connection (the driver's default)
  gripper_slow_bus_shared   the same on one shared SDK connection (the layout before the fix)

    .venv/bin/python bench/driver_servo.py [--streamers thread process] [--rates 200 250]
        [--loads quiet neighbour] [--seconds 10] [--cases ...] [--slow-bus-rate 200]

The slow-bus cases run at --slow-bus-rate, quiet, for each streamer.

Prints a table and writes bench/results/driver_servo.json.
"""

from __future__ import annotations

import argparse
import contextlib
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


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process (or one of its threads) from /proc, in seconds."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def period_stats(periods: np.ndarray, rate: float) -> dict:
    err = np.abs(periods - 1.0 / rate) * 1e3
    return {
        "achieved_rate_hz": float(len(periods) / periods.sum()),
        "period_error_p50_ms": float(np.percentile(err, 50)),
        "period_error_p99_ms": float(np.percentile(err, 99)),
        "period_error_max_ms": float(err.max()),
        "period_p99_ms": float(np.percentile(periods, 99) * 1e3),
        "period_max_ms": float(periods.max() * 1e3),
        "cycles_over_2_periods": int(np.sum(periods > 2.0 / rate)),
    }


def floor_main(rate: float, seconds: float, priority: int, spin: float) -> int:
    """The measured limit: a loop doing nothing but sleep-to-deadline (prints JSON)."""
    from evo1_ros.driver.realtime import RealtimeConfig, apply_realtime, sleep_until

    settings = apply_realtime(RealtimeConfig(priority=priority, lock_memory=priority > 0, spin=spin))
    period = 1.0 / rate
    n = int(rate * seconds)
    periods = np.empty(n)
    prev = time.monotonic()
    deadline = prev + period
    cpu0 = time.process_time()
    for k in range(n):
        sleep_until(deadline, spin)
        now = time.monotonic()
        deadline = deadline + period if now - deadline < period else now + period
        periods[k] = now - prev
        prev = now
    out = period_stats(periods, rate)
    out["cpu_share"] = (time.process_time() - cpu0) / seconds
    out["settings"] = [text for _, text in settings]
    print(json.dumps(out))
    return 0


def measure_floor(rate: float, seconds: float, priority: int, spin: float) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--floor", str(rate), str(seconds), str(priority), str(spin)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


BURN = "import numpy as np\na = np.random.rand(200_000)\nwhile True:\n    np.sort(a)\n"


@contextlib.contextmanager
def neighbour(active: bool):
    """One CPU-burning process per core (normal priority) while the block runs."""
    procs = (
        [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(os.cpu_count() or 1)] if active else []
    )
    try:
        time.sleep(1.0 if active else 0.0)
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(5)


def run_rate(
    rate: float,
    seconds: float,
    domain: int,
    case: str,
    tool_bus_delay: float,
    streamer: str = "thread",
    load: str = "quiet",
    rt_priority: int = 50,
    controller_priority: int = 0,
) -> dict:
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
        # every thread of the controller inherits the policy set before exec
        preexec_fn=(lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(controller_priority)))
        if controller_priority > 0
        else None,
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
                Parameter("streamer", value=streamer),
                Parameter("rt_priority", value=rt_priority),
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
        stream_pid = node.driver.streamer_pid
        stream_tid = None if stream_pid is not None else node.driver._stream_thread.native_id
        stream_cpu = lambda: cpu_seconds(stream_pid or os.getpid(), stream_tid)  # noqa: E731
        t0 = time.monotonic()
        cpu0, scpu0, ccpu0 = time.process_time(), stream_cpu(), cpu_seconds(ctrl.pid)
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        cpu, scpu, ccpu = time.process_time() - cpu0, stream_cpu() - scpu0, cpu_seconds(ctrl.pid) - ccpu0
        recording.clear()
        after = node.driver.status()
        periods = np.array(after.periods[-int(rate * seconds) :])
        dv = velocity_changes(log)
        result = {
            "streamer": streamer,
            "load": load,
            "controller_priority": controller_priority,
            "case": case,
            "servo_rate_target_hz": rate,
            "gripper": gripper,
            "gripper_connection": spec["connection"] if gripper else "",
            "tool_bus_delay_ms": delay * 1e3,
            **period_stats(periods, rate),
            "commands_sent_per_s": (after.commands_sent - sent0) / elapsed,
            # the SDK round trip to the controller inside the loop (process streamer only)
            "servo_call_p99_ms": float(np.percentile(after.send_times[-int(rate * seconds) :], 99) * 1e3)
            if after.send_times
            else float("nan"),
            "servo_call_max_ms": float(np.max(after.send_times[-int(rate * seconds) :]) * 1e3)
            if after.send_times
            else float("nan"),
            "max_dv_between_commands_rad_s": float(np.max(dv)),
            "p99_dv_between_commands_rad_s": float(np.percentile(dv, 99)),
            "dv_allowed_by_cap_rad_s": 4.0 / rate,
            "gripper_polls": after.gripper_polls - before.gripper_polls,
            "joint_states_hz": (len(received) - js0) / elapsed,
            "send_failures": after.send_failures - before.send_failures,
            "late_cycles": after.late_cycles - before.late_cycles,  # > max_step_periods periods
            "driver_process_cpu_share": cpu / elapsed,  # the ROS process (incl. a stream thread)
            "streaming_side_cpu_share": scpu / elapsed,  # the stream thread, or the streamer process
            "controller_process_cpu_share": ccpu / elapsed,
            "load_average_1min": os.getloadavg()[0],
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
    if len(sys.argv) == 6 and sys.argv[1] == "--floor":
        return floor_main(float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--streamers", nargs="+", choices=["thread", "process"], default=["thread", "process"]
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 250.0], help="servo rates (Hz)")
    parser.add_argument("--loads", nargs="+", choices=["quiet", "neighbour"], default=["quiet", "neighbour"])
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time per rate and case")
    parser.add_argument("--floor-seconds", type=float, default=5.0, help="measurement time of each floor")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES), help="cases to run")
    parser.add_argument("--slow-bus-rate", type=float, default=200.0, help="servo rate of the slow-bus cases")
    parser.add_argument("--rt-priority", type=int, default=50, help="SCHED_FIFO priority of the process")
    parser.add_argument("--spin", type=float, default=0.0002, help="spin before each deadline (s)")
    parser.add_argument(
        "--controller-priority",
        type=int,
        default=0,
        help="SCHED_FIFO priority of the loopback controller process (0 = normal). A real xArm"
        " controller is a separate real-time machine that answers each servo command in about 1 ms"
        " whatever the PC's load; at normal priority on a loaded PC the simulated one answers late"
        " and the (synchronous) SDK call then delays the stream",
    )
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
    results: list[dict] = []
    floors: list[dict] = []
    plain = [c for c in args.cases if not CASES[c]["slow_bus"]]
    slow = [c for c in args.cases if CASES[c]["slow_bus"]]

    def run_case(rate: float, case: str, streamer: str, load: str) -> dict:
        """One run_rate case; everything but rate, case, streamer and load comes from the command line."""
        return run_rate(
            rate,
            args.seconds,
            domain,
            case,
            args.tool_bus_delay,
            streamer,
            load,
            args.rt_priority,
            args.controller_priority,
        )

    for load in args.loads:
        with neighbour(load == "neighbour"):
            for rate in args.rates:
                for name, prio, spin in (
                    ("floor_other", 0, 0.0),
                    ("floor_fifo", args.rt_priority, args.spin),
                ):
                    floor = measure_floor(rate, args.floor_seconds, prio, spin)
                    floor.update(
                        streamer=name,
                        load=load,
                        case="sleep_only",
                        servo_rate_target_hz=rate,
                        load_average_1min=os.getloadavg()[0],
                    )
                    floors.append(floor)
                for streamer in args.streamers:
                    for case in plain:
                        results.append(run_case(rate, case, streamer, load))
            if load == "quiet":
                for streamer in args.streamers:
                    for case in slow:
                        results.append(run_case(args.slow_bus_rate, case, streamer, load))
    print_table(results, floors)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "machine": f"{os.cpu_count()} cores",
        "load_average_1min": os.getloadavg()[0],
        "command": " ".join(sys.argv),
        "results": results,
        "floors": floors,
    }
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    return 0


def print_table(results: list[dict], floors: list[dict]) -> None:
    """Markdown table: streamers and their floors side by side per rate and load."""
    cols = [
        ("load", "load"),
        ("servo_rate_target_hz", "Hz"),
        ("case", "case"),
        ("streamer", "streamer"),
        ("achieved_rate_hz", "achieved Hz"),
        ("period_error_p50_ms", "err p50 ms"),
        ("period_error_p99_ms", "err p99 ms"),
        ("period_error_max_ms", "err max ms"),
        ("late_cycles", "late (capped)"),
        ("cycles_over_2_periods", "> 2 periods"),
        ("max_dv_between_commands_rad_s", "max dv rad/s"),
        ("servo_call_p99_ms", "SDK call p99 ms"),
        ("servo_call_max_ms", "SDK call max ms"),
        ("streaming_side_cpu_share", "stream CPU"),
        ("driver_process_cpu_share", "ROS proc CPU"),
        ("controller_process_cpu_share", "ctrl CPU"),
        ("load_average_1min", "loadavg"),
    ]
    print("| " + " | ".join(h for _, h in cols) + " |")
    print("|" + "---|" * len(cols))
    rows = results + [dict(f, streaming_side_cpu_share=f["cpu_share"]) for f in floors]
    rows.sort(key=lambda r: (r["load"] != "quiet", r["servo_rate_target_hz"], r["case"], r["streamer"]))
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r.get(key, "")
            cells.append(f"{v:.2f}" if isinstance(v, float) else str(v))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())

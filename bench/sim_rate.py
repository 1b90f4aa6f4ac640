"""Simulation benchmark: physics real-time factor, camera render rate, and the scripted expert's success.

Part 1 - rates. The sim world (MuJoCo plant behind the loopback xArm controller, physics stepped in
real time by the controller's plant thread) runs in this process while a client streams servo_j
targets through the real xArm SDK at 200 Hz (what the xarm_driver does in servo mode). Meanwhile
this thread renders 1 or 2 cameras (base, wrist) at 224² and 448² as fast as it can for `--seconds`.
Reported per case: achieved render rate (frames/s, and camera images/s), the physics real-time factor
(simulated s / wall s) and the simulated time dropped because physics fell behind.

Part 2 - expert. The scripted expert on `--seeds` seeds of every task, run offline (the same plant and
motions, stepped faster than real time, no ROS; evo1_ros/sim/offline_runner.py). Reported per task:
success rate and mean simulated time to success. The same expert through the full ROS graph
(driver + SDK + controller) is `evo1 eval sim --policy expert --episodes N`.

    .venv/bin/python bench/sim_rate.py [--seconds 6] [--seeds 20] [--sizes 224 448] [--tasks ...]

Prints tables and writes bench/results/sim_rate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evo1_ros.sim.offline_runner import run_offline_episode  # noqa: E402
from evo1_ros.sim.sim_world import READY_JOINTS, SimSettings, SimWorld  # noqa: E402
from evo1_ros.sim.tasks import TASK_NAMES  # noqa: E402


def _stream(host: str, stop: threading.Event, rate: float, counter: list[int]) -> None:
    """servo_j targets at `rate` Hz through the real SDK (mode 1), a slow sine on joints 1 and 6."""
    from xarm.wrapper import XArmAPI

    arm = XArmAPI(host, is_radian=True)
    try:
        arm.clean_error()
        arm.motion_enable(True)
        arm.set_mode(1)
        arm.set_state(0)
        time.sleep(0.3)
        q0 = np.array(READY_JOINTS)
        period = 1.0 / rate
        t0 = next_t = time.monotonic()
        while not stop.is_set():
            t = time.monotonic() - t0
            q = q0 + np.array([0.2, 0, 0, 0, 0, 0.3]) * np.sin(0.5 * t)
            arm.set_servo_angle_j(q.tolist(), is_radian=True)
            counter[0] += 1
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()
    finally:
        arm.disconnect()


def measure_rates(sizes: list[int], seconds: float, stream_rate: float) -> list[dict]:
    """Render-rate / RTF cases with the controller running and an SDK client streaming."""
    results = []
    for size in sizes:
        for cameras in (["base"], ["base", "wrist"]):
            settings = SimSettings()
            settings.scene.max_render_size = max(640, size)
            world = SimWorld(settings).start()
            stop = threading.Event()
            sent = [0]
            streamer = threading.Thread(
                target=_stream, args=(world.host, stop, stream_rate, sent), daemon=True
            )
            streamer.start()
            renderer = world.make_renderer(size, size)
            try:
                time.sleep(1.0)  # connection + bring-up
                sim0, wall0, drop0, sent0 = (
                    world.plant.sim_time,
                    time.monotonic(),
                    world.plant.dropped_time,
                    sent[0],
                )
                frames = 0
                while time.monotonic() - wall0 < seconds:
                    _, images = renderer.render(cameras)
                    frames += 1
                wall = time.monotonic() - wall0
                sim = world.plant.sim_time - sim0
                result = {
                    "size": size,
                    "cameras": len(cameras),
                    "render_fps": frames / wall,
                    "images_per_s": frames * len(cameras) / wall,
                    "rtf": sim / wall,
                    "dropped_s": world.plant.dropped_time - drop0,
                    "servo_rate_hz": (sent[0] - sent0) / wall,
                    "image_std": float(np.mean([img.std() for img in images.values()])),
                }
            finally:
                renderer.close()
                stop.set()
                streamer.join(timeout=5)
                world.stop()
            results.append(result)
            print(
                f"{size:>4}² x{len(cameras)} camera(s): {result['render_fps']:6.1f} frames/s "
                f"({result['images_per_s']:6.1f} images/s), RTF {result['rtf']:.3f}, "
                f"dropped {result['dropped_s']:.3f} s, servo {result['servo_rate_hz']:.0f} Hz",
                flush=True,
            )
    return results


def measure_expert(tasks: list[str], seeds: int) -> list[dict]:
    """Offline expert success rate and mean time to success per task."""
    world = SimWorld(SimSettings())  # not started: the offline runner steps the plant itself
    results = []
    for task in tasks:
        episodes = []
        wall0 = time.monotonic()
        for seed in range(seeds):
            ep = run_offline_episode(world, task, seed)
            episodes.append({"seed": seed, "success": ep.success, "time": ep.success_time, "error": ep.error})
        times = [e["time"] for e in episodes if e["success"] and e["time"] is not None]
        result = {
            "task": task,
            "seeds": seeds,
            "successes": sum(e["success"] for e in episodes),
            "success_rate": sum(e["success"] for e in episodes) / seeds,
            "mean_time_to_success_s": float(np.mean(times)) if times else None,
            "wall_s": time.monotonic() - wall0,
            "failed_seeds": [e["seed"] for e in episodes if not e["success"]],
        }
        results.append(result)
        mean = (
            "-" if result["mean_time_to_success_s"] is None else f"{result['mean_time_to_success_s']:.1f} s"
        )
        print(
            f"{task:<15} {result['successes']:>2}/{seeds} successes, mean time to success {mean} "
            f"(offline, {result['wall_s']:.0f} s wall)",
            flush=True,
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="render window per case (s)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 448], help="square image sizes (px)")
    parser.add_argument("--stream-rate", type=float, default=200.0, help="SDK servo_j rate (Hz)")
    parser.add_argument("--seeds", type=int, default=20, help="expert seeds per task (0 = skip)")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sim_rate.json")
    args = parser.parse_args()
    rates = measure_rates(args.sizes, args.seconds, args.stream_rate)
    expert = measure_expert(args.tasks, args.seeds) if args.seeds > 0 else []
    load = os.getloadavg()[0]
    summary = {
        "machine": f"{os.cpu_count()} cores",
        "load_average_1min": load,
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
        "rates": rates,
        "expert_offline": expert,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out} (load average {load:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

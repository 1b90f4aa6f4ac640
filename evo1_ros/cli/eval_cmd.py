"""`evo1 eval sim`: closed-loop evaluation in the MuJoCo workcell through the real ROS graph.

Each episode: home the arm (through the driver), reset the scene with a seed, let the policy act -
the scripted expert (`--policy expert`) or an Evo-1 checkpoint run by the real `evo1_policy` node -
until the task's success test fires or the time limit passes. Writes `summary.json` (per episode:
success, time to success, errors; success rate; inference/control statistics), one mp4 per episode
(base | wrist camera side by side) and `summary.png` (success per episode, inference latency
histogram, joint traces of the last episode).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from evo1_ros.sim.tasks import TASK_NAMES

EPILOG = """examples:
  evo1 eval sim --policy expert --task pick_place_can --episodes 3 --out /tmp/eval_expert
  evo1 eval sim --policy ~/evo1_checkpoints/sim_cans --task pick_place_can --episodes 10 --out /tmp/eval_ckpt
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `evo1 eval` and its `sim` subcommand."""
    ev = subparsers.add_parser("eval", help="closed-loop evaluation (simulation)")
    sub = ev.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
    sub.required = True
    p = sub.add_parser(
        "sim",
        help="evaluate the scripted expert or an Evo-1 checkpoint in the MuJoCo workcell",
        description="Run seeded episodes of a task in the simulation (sim node + xArm driver [+ evo1_policy]) "
        "and report the success rate, time to success, inference/control statistics, videos and a plot.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--policy", required=True, help="'expert' or an Evo-1 checkpoint folder")
    p.add_argument("--task", default="pick_place_can", choices=TASK_NAMES, help="task (default %(default)s)")
    p.add_argument("--episodes", type=int, default=3, help="episodes (default %(default)s)")
    p.add_argument(
        "--seed", type=int, default=1000, help="seed of the first episode, +1 each (default %(default)s)"
    )
    p.add_argument("--time-limit", type=float, default=60.0, help="s per episode (default %(default)s)")
    p.add_argument("--out", default="", help="output folder (default: ./eval_sim_<task>_<time>)")
    p.add_argument(
        "--image-size", type=int, default=224, help="square camera images, px (default %(default)s)"
    )
    p.add_argument("--camera-rate", type=float, default=15.0, help="Hz (default %(default)s)")
    p.add_argument("--no-video", action="store_true", help="do not write an mp4 per episode")
    p.add_argument("--device", default="auto", help="policy device: auto | cpu | cuda (checkpoints only)")
    p.add_argument("--robot-ip", default="", help="127.x address of the simulated controller (default: free)")
    p.add_argument("--log-dir", default="", help="folder for the child processes' logs (default: <out>/logs)")
    p.set_defaults(func=_eval_sim)


class _EpisodeRecorder:
    """Per-episode mp4 (base | wrist) and joint traces, fed from ROS callbacks."""

    def __init__(self, client: Any, fps: float, video: bool) -> None:
        from sensor_msgs.msg import Image

        from evo1_ros.ros.image import image_to_numpy
        from evo1_ros.ros.qos import SENSOR

        self._to_numpy = image_to_numpy
        self._fps = max(1, int(round(fps)))
        self._video = video
        self._lock = threading.Lock()
        self._wrist: np.ndarray | None = None
        self._encoder: Any = None
        self._path: Path | None = None
        self.frames = 0
        self.trace_t: list[float] = []
        self.trace_q: list[np.ndarray] = []
        self._t0 = time.monotonic()
        self._client = client
        if video:
            client.create_subscription(Image, "/cameras/base/image_raw", self._on_base, SENSOR)
            client.create_subscription(Image, "/cameras/wrist/image_raw", self._on_wrist, SENSOR)
        client.create_timer(0.05, self._sample_joints)

    def begin(self, path: Path | None) -> None:
        from recording.dataset.video_encoder import CameraEncoder
        from recording.dataset.video_settings import VideoSettings

        with self._lock:
            self.trace_t, self.trace_q, self.frames = [], [], 0
            self._t0 = time.monotonic()
            self._path = path
            self._settings = VideoSettings(codec="libx264", gop=self._fps, preset="veryfast")
            self._make = CameraEncoder

    def end(self) -> str:
        with self._lock:
            encoder, self._encoder = self._encoder, None
            self._path = None  # no new encoder until the next begin()
        if encoder is None:
            return ""
        return str(encoder.finish().path)

    def _on_wrist(self, msg: Any) -> None:
        self._wrist = self._to_numpy(msg)

    def _on_base(self, msg: Any) -> None:
        base = self._to_numpy(msg)
        wrist = (
            self._wrist
            if self._wrist is not None and self._wrist.shape == base.shape
            else np.zeros_like(base)
        )
        frame = np.ascontiguousarray(np.hstack([base, wrist]))
        with self._lock:
            if self._video and self._encoder is None and self._path is not None:
                h, w = frame.shape[:2]
                self._encoder = self._make(self._path, w, h, self._fps, self._settings, name="eval")
            if self._encoder is not None:
                self._encoder.submit(frame)
                self.frames += 1

    def traces(self) -> tuple[np.ndarray, np.ndarray]:
        """(times s, joints N x 7) of the current/last episode, a consistent copy."""
        with self._lock:
            return np.array(self.trace_t), np.array(self.trace_q)

    def _sample_joints(self) -> None:
        try:
            q = self._client.joints()
        except Exception:  # no joint states yet
            return
        with self._lock:
            self.trace_t.append(time.monotonic() - self._t0)
            self.trace_q.append(q)


def _eval_sim(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        print("evo1 eval sim: --episodes must be >= 1", file=sys.stderr)
        return 2
    expert = args.policy == "expert"
    checkpoint = None if expert else Path(args.policy).expanduser()
    if checkpoint is not None and not checkpoint.is_dir():
        print(
            f"evo1 eval sim: --policy must be 'expert' or a checkpoint folder; {checkpoint} is neither",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out or f"eval_sim_{args.task}_{time.strftime('%Y%m%d_%H%M%S')}").expanduser()
    out.mkdir(parents=True, exist_ok=True)
    from evo1_ros.cli.sim_episodes import EpisodeError, SimStack, StackSettings, ros_client
    from evo1_ros.paths import share_file
    from recording.progress import Progress
    from recording.tasks_catalogue import load_tasks, resolve_task

    prompt = resolve_task(load_tasks(share_file("config", "tasks.yaml")), args.task)
    stack = SimStack(
        StackSettings(
            task=args.task,
            seed=args.seed,
            image_size=args.image_size,
            camera_rate=args.camera_rate,
            robot_ip=args.robot_ip,
            log_dir=args.log_dir or str(out / "logs"),
            policy_checkpoint=str(checkpoint or ""),
            policy_task=prompt,
            policy_device=args.device,
        )
    ).start()
    episodes: list[dict[str, Any]] = []
    progress = Progress(f"eval sim {args.task}")
    latencies: list[float] = []
    try:
        with ros_client(policy=not expert) as client:
            recorder = _EpisodeRecorder(client, args.camera_rate, not args.no_video)
            client.wait_ready(120.0 if expert else 600.0, stack.check_alive)
            for i in range(args.episodes):
                seed = args.seed + i
                progress(i, args.episodes)
                client.home()
                client.reset_scene(args.task, seed)
                recorder.begin(None if args.no_video else out / f"episode_{i:03d}_seed{seed}.mp4")
                t0 = time.monotonic()
                if expert:
                    success, motions, error = client.run_expert(args.task, args.time_limit)
                else:
                    success, error, lat = client.run_policy(prompt, args.time_limit)
                    motions = []
                    latencies += lat
                video = recorder.end()
                status = client.status()
                episodes.append(
                    {
                        "episode": i,
                        "seed": seed,
                        "success": bool(success),
                        "time_to_success": status.get("success_time"),
                        "duration": time.monotonic() - t0,
                        "error": error,
                        "motions": motions,
                        "video": video,
                        "frames": recorder.frames,
                        "physics_dropped_time": status.get("dropped_time"),
                        "camera_fps": status.get("camera_fps"),
                    }
                )
                _write_plot(out / "summary.png", episodes, latencies, recorder)
            progress(args.episodes, args.episodes)
            progress.close()
    except EpisodeError as exc:
        progress.close()
        print(f"evo1 eval sim: {exc}\n(logs: {stack.log_dir})", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    summary = _summary(args, prompt, episodes, latencies)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(_table(summary))
    print(f"summary: {out / 'summary.json'}  plot: {out / 'summary.png'}")
    return 0


def _summary(
    args: argparse.Namespace, prompt: str, episodes: list[dict[str, Any]], latencies: list[float]
) -> dict:
    wins = [e for e in episodes if e["success"]]
    times = [e["time_to_success"] for e in wins if e["time_to_success"] is not None]
    lat = np.asarray(latencies, float)
    return {
        "policy": args.policy,
        "task": args.task,
        "prompt": prompt,
        "episodes": len(episodes),
        "successes": len(wins),
        "success_rate": len(wins) / len(episodes) if episodes else 0.0,
        "mean_time_to_success": float(np.mean(times)) if times else None,
        "time_limit": args.time_limit,
        "inference_latency": (
            {
                "mean": float(lat.mean()),
                "p50": float(np.median(lat)),
                "p95": float(np.percentile(lat, 95)),
                "n": int(lat.size),
            }
            if lat.size
            else None
        ),
        "per_episode": episodes,
    }


def _table(summary: dict) -> str:
    lines = [f"{'ep':>3} {'seed':>6} {'result':>8} {'t_success':>10}  error"]
    for e in summary["per_episode"]:
        t = "-" if e["time_to_success"] is None else f"{e['time_to_success']:.1f}s"
        lines.append(
            f"{e['episode']:>3} {e['seed']:>6} {'success' if e['success'] else 'fail':>8} {t:>10}  {e['error']}"
        )
    mean = summary["mean_time_to_success"]
    lines.append(
        f"{summary['task']} ({summary['policy']}): {summary['successes']}/{summary['episodes']} successes "
        f"({100 * summary['success_rate']:.0f} %), mean time to success "
        + ("-" if mean is None else f"{mean:.1f} s")
    )
    return "\n".join(lines)


def _write_plot(
    path: Path, episodes: list[dict[str, Any]], latencies: list[float], recorder: _EpisodeRecorder
) -> None:
    """Three panels drawn with OpenCV (no matplotlib in the stack): outcomes, latency histogram, joints."""
    import cv2

    from evo1_ros.evaluation.plotting import JOINT_COLORS

    w, h = 900, 620
    img = np.full((h, w, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(
        img, "success per episode (green = success; bar = time to success)", (10, 22), font, 0.5, (0, 0, 0), 1
    )
    n = max(1, len(episodes))
    bw = min(60, (w - 40) // n)
    tmax = max([e["duration"] for e in episodes] + [1.0])
    for i, e in enumerate(episodes):
        x = 20 + i * bw
        t = e["time_to_success"] if e["time_to_success"] is not None else e["duration"]
        bh = int(140 * min(1.0, t / tmax))
        color = (60, 170, 60) if e["success"] else (60, 60, 210)
        cv2.rectangle(img, (x + 2, 180 - bh), (x + bw - 2, 180), color, -1)
        cv2.putText(img, str(e["seed"]), (x + 2, 196), font, 0.35, (0, 0, 0), 1)
    cv2.putText(img, "inference latency (s)", (10, 226), font, 0.5, (0, 0, 0), 1)
    if latencies:
        counts, edges = np.histogram(latencies, bins=30)
        cw = (w - 40) // 30
        for k, c in enumerate(counts):
            bh = int(120 * c / max(1, counts.max()))
            cv2.rectangle(img, (20 + k * cw, 360 - bh), (20 + (k + 1) * cw - 2, 360), (200, 120, 40), -1)
        cv2.putText(img, f"{edges[0]:.3f}", (20, 376), font, 0.35, (0, 0, 0), 1)
        cv2.putText(img, f"{edges[-1]:.3f}", (w - 70, 376), font, 0.35, (0, 0, 0), 1)
    else:
        cv2.putText(img, "scripted expert: no model inference", (20, 300), font, 0.5, (90, 90, 90), 1)
    cv2.putText(img, "joint traces of the last episode (rad, 20 Hz)", (10, 400), font, 0.5, (0, 0, 0), 1)
    t, q = recorder.traces()
    if len(t) > 1:
        lo, hi = float(q.min()), float(q.max())
        for j in range(q.shape[1]):
            xs = 20 + (t - t[0]) / max(1e-6, t[-1] - t[0]) * (w - 120)
            ys = 600 - (q[:, j] - lo) / max(1e-6, hi - lo) * 180
            pts = np.stack([xs, ys], axis=1).astype(np.int32)
            cv2.polylines(img, [pts], False, JOINT_COLORS[j % len(JOINT_COLORS)], 1)
            cv2.putText(
                img,
                f"j{j + 1}" if j < 6 else "grip",
                (w - 90, 430 + 16 * j),
                font,
                0.4,
                JOINT_COLORS[j % len(JOINT_COLORS)],
                1,
            )
    cv2.imwrite(str(path), img[:, :, ::-1])

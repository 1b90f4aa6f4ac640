"""Recorder throughput: N cameras x SIZE^2 x FPS fed through the real LeRobot writer on the frame clock.

Measures what a teleop recording PC cares about: frames dropped by the frame clock (target 0), how
long add_frame holds the recording loop, how far the background encoders fall behind (backlog),
the process CPU share while recording, and how long save_episode takes after stop (the wait before
the next episode can start). Prints a table and writes bench/results/recorder_throughput.json.

Example: .venv/bin/python bench/recorder_throughput.py --seconds 60 --codec libx264,libsvtav1

Not measured: LeRobot's own recorder for comparison (lerobot==0.3.3 pulls a CUDA torch build; this
benchmark environment must stay torch-free on the recording side).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recording.errors import RecordingError
from recording.features import CameraSpec, DatasetFeatures
from recording.frame_clock import FrameClock
from recording.synth import synthetic_image, synthetic_joints
from recording.validator import validate_dataset
from recording.video_settings import VideoSettings
from recording.writer import LeRobotWriter

JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "drive_joint")


def frame_pool(cameras: int, size: int, n: int) -> list[list[np.ndarray]]:
    """Pre-rendered frames per camera (moving pattern + sensor-like noise), so generation is not measured."""
    rng = np.random.default_rng(0)
    pools = []
    for c in range(cameras):
        pool = []
        for k in range(n):
            img = synthetic_image(c, 0, k, size, size).astype(np.int16)
            img += rng.integers(-4, 5, img.shape, dtype=np.int16)
            pool.append(np.clip(img, 0, 255).astype(np.uint8))
        pools.append(pool)
    return pools


def run_one(
    codec: str, seconds: float, fps: int, cameras: int, size: int, workdir: Path, validate: bool
) -> dict:
    names = ["base", "wrist", "side", "top", "extra"][:cameras]
    feats = DatasetFeatures(JOINTS, JOINTS, tuple(CameraSpec(n, size, size) for n in names))
    video = VideoSettings(codec=codec)
    pools = frame_pool(cameras, size, fps)
    root = workdir / f"ds_{video.encoder()}"
    shutil.rmtree(root, ignore_errors=True)
    writer = LeRobotWriter.create(root, fps, feats, robot_type="xarm6", video=video)
    n_ticks = int(round(seconds * fps))
    add_ms: list[float] = []
    refused = 0
    backlog: list[int] = []
    writer.start_episode("benchmark")
    clock = FrameClock(fps)
    cpu0, t0 = os.times(), time.monotonic()
    clock.start()
    for _ in range(n_ticks):
        tick = clock.wait()
        if tick.index >= n_ticks:
            break
        k = tick.index
        images = {n: pools[i][k % fps] for i, n in enumerate(names)}
        a = time.perf_counter()
        try:
            writer.add_frame(synthetic_joints(0, k, 7, fps), synthetic_joints(0, k + 1, 7, fps), images)
        except RecordingError:  # encoders too far behind: the writer refuses rather than eat all memory
            refused += 1
        add_ms.append((time.perf_counter() - a) * 1e3)
        backlog.append(writer.encoder_backlog)
    t_stop, cpu1 = time.monotonic(), os.times()
    load_at_stop = os.getloadavg()[0]
    frames = writer.episode_frames
    info = writer.save_episode()
    t_saved, cpu2 = time.monotonic(), os.times()
    writer.close()
    rec_wall = t_stop - t0
    rec_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    save_cpu = (cpu2.user + cpu2.system) - (cpu1.user + cpu1.system)
    ncpu = os.cpu_count() or 1
    size_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
    result = {
        "codec": video.encoder(),
        "ticks": n_ticks,
        "frames_recorded": frames,
        "dropped_frames": clock.skipped_total,
        "refused_frames_encoder_behind": refused,
        "loadavg_1min_at_stop": round(load_at_stop, 2),
        "record_wall_s": round(rec_wall, 2),
        "cpu_cores_used_recording": round(rec_cpu / rec_wall, 2),
        "cpu_share_recording_pct": round(100 * rec_cpu / rec_wall / ncpu, 1),
        "add_frame_ms_p50": round(float(np.percentile(add_ms, 50)), 3),
        "add_frame_ms_p99": round(float(np.percentile(add_ms, 99)), 3),
        "add_frame_ms_max": round(float(np.max(add_ms)), 3),
        "encoder_backlog_max_frames": int(max(backlog)),
        "encoder_backlog_at_stop_frames": int(backlog[-1]),
        "save_latency_s": round(t_saved - t_stop, 3),
        "save_cpu_cores": round(save_cpu / max(t_saved - t_stop, 1e-9), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dataset_mb": round(size_mb, 2),
        "episode_length": info.length,
    }
    if validate:
        v0 = time.monotonic()
        report = validate_dataset(root)
        result["validate_ok"] = report.ok
        result["validate_problems"] = [str(p) for p in report.problems][:5]
        result["validate_s"] = round(time.monotonic() - v0, 2)
    shutil.rmtree(root, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="recording length per codec (default 60)")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--size", type=int, default=448, help="square frame side in pixels (default 448)")
    ap.add_argument("--codec", default="auto", help="comma list: auto, libsvtav1, libx264 (default auto)")
    ap.add_argument("--no-validate", action="store_true", help="skip validating the recorded episode")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results" / "recorder_throughput.json"
    )
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.fps <= 0 or not 1 <= args.cameras <= 5 or args.size < 16 or args.size % 2:
        print(
            "recorder_throughput: error: need seconds > 0, fps > 0, 1..5 cameras, even size >= 16",
            file=sys.stderr,
        )
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="evo1_bench_") as tmp:
        for codec in [c.strip() for c in args.codec.split(",") if c.strip()]:
            print(
                f"recording {args.seconds:g} s: {args.cameras} x {args.size}x{args.size} @ {args.fps} fps, "
                f"codec {codec} ...",
                flush=True,
            )
            results.append(
                run_one(
                    codec, args.seconds, args.fps, args.cameras, args.size, Path(tmp), not args.no_validate
                )
            )
    rows = [
        ("codec", "codec"),
        ("frames recorded / ticks", None),
        ("dropped frames", "dropped_frames"),
        ("refused (encoders behind)", "refused_frames_encoder_behind"),
        ("load average (1 min)", "loadavg_1min_at_stop"),
        ("CPU cores used (recording)", "cpu_cores_used_recording"),
        ("CPU share of machine %", "cpu_share_recording_pct"),
        ("add_frame p50 ms", "add_frame_ms_p50"),
        ("add_frame p99 ms", "add_frame_ms_p99"),
        ("add_frame max ms", "add_frame_ms_max"),
        ("encoder backlog max (frames)", "encoder_backlog_max_frames"),
        ("save latency after stop s", "save_latency_s"),
        ("peak RSS MB", "peak_rss_mb"),
        ("dataset MB", "dataset_mb"),
        ("validates", "validate_ok"),
    ]
    print()
    for label, key in rows:
        cells = [
            f"{r['frames_recorded']}/{r['ticks']}" if key is None else str(r.get(key, "-")) for r in results
        ]
        print(f"{label:<30} " + " ".join(f"{c:>14}" for c in cells))
    payload = {
        "benchmark": "recorder_throughput",
        "setup": {"seconds": args.seconds, "fps": args.fps, "cameras": args.cameras, "size": args.size},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "pyav": av.__version__,
            "platform": platform.platform(),
        },
        "results": results,
        "not_measured": "LeRobot 0.3.3 recorder comparison (needs torch; left out)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

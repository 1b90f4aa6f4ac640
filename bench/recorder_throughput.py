"""Recorder throughput: N cameras x SIZE^2 x FPS fed through the real LeRobot writer on the frame clock.

Measures what a teleop recording PC cares about: frames dropped by the frame clock (target 0), how
long add_frame holds the recording loop, how far the background encoders fall behind (backlog),
the process CPU share while recording, and how long save_episode takes after stop (the wait before
the next episode can start). Prints a table and writes bench/results/recorder_throughput.json.

Side by side with LeRobot 0.3.3's writer (--compare-lerobot; on by default when
.venv-compat-033/bin/python exists, --no-compare-lerobot to skip): the same synthetic frames (same
generator and seed, same size, fps, cameras, joints, episodes x frames) go through the project's
writer here and, in a subprocess inside .venv-compat-033, through LeRobot's own
``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` (bench/lerobot_writer_baseline.py,
which never imports the project's writer; the frames reach it as an .npz). Both are fed as fast as
possible (no frame clock), so the figures are pure writer cost: wall and CPU time from the first
add_frame to the end of the last save_episode (the project's writer encodes while recording,
LeRobot's writes PNGs during add_frame and encodes in save_episode), add_frame p50/p99 and save
latency, and the ratio ours / theirs (issue target: wall time <= 1/3).

Codec for codec: LeRobot 0.3.3 always encodes libsvtav1 g=2 crf=30 yuv420p; for another codec the
baseline rebinds its encode_video_frames to the same function with vcodec set (it accepts h264,
hevc, libsvtav1; g=2, crf=30, no preset). With --compare-settings lerobot (default) the project's
writer gets those same encoder options (g=2, crf=30, x264/x265 preset medium, x264's own default);
with --compare-settings project it keeps its own defaults (libx264: crf 23, preset veryfast). The
table and JSON say what each side used.

Examples:
  .venv/bin/python bench/recorder_throughput.py --seconds 60 --codec libx264,libsvtav1
  .venv/bin/python bench/recorder_throughput.py --no-realtime --compare-episodes 3 --compare-frames 150
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from writer_timing import (  # bench/ is sys.path[0] when run as a script
    codec_in_file,
    dataset_mb,
    pct,
    timing_summary,
)

from recording.dataset.errors import RecordingError
from recording.dataset.features import CameraSpec, DatasetFeatures
from recording.dataset.synth import synthetic_image, synthetic_joints
from recording.dataset.validator import validate_dataset
from recording.dataset.video_settings import VideoSettings
from recording.dataset.writer import DEFAULT_MAX_BUFFER_MB, LeRobotWriter
from recording.recorder.frame_clock import FrameClock

JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "drive_joint")
CAMERA_NAMES = ("base", "wrist", "side", "top", "extra")
REPO = Path(__file__).resolve().parents[1]
COMPAT_PYTHON = REPO / ".venv-compat-033" / "bin" / "python"
BASELINE = Path(__file__).resolve().parent / "lerobot_writer_baseline.py"
# LeRobot 0.3.3 encode_video_frames defaults: g=2, crf=30, no preset (x264/x265: their default, medium).
LEROBOT_CRF = 30
LEROBOT_GOP = 2


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
    names = list(CAMERA_NAMES[:cameras])
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
    size_mb = dataset_mb(root)
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
        "add_frame_ms_p50": pct(add_ms, 50),
        "add_frame_ms_p99": pct(add_ms, 99),
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


# ----------------------------------------------------------------- side by side with LeRobot 0.3.3


def comparison_video(codec: str, settings: str) -> VideoSettings:
    """The project's encoder settings for the comparison: LeRobot's (g=2, crf=30, no preset) or its own."""
    enc = VideoSettings(codec=codec).encoder()
    if settings == "project":
        return VideoSettings(codec=enc)
    # x264/x265 without a preset run "medium"; the project's own default for them is "veryfast".
    preset = "medium" if enc in ("libx264", "libx265") else None
    return VideoSettings(codec=enc, gop=LEROBOT_GOP, crf=LEROBOT_CRF, preset=preset)


def comparison_inputs(
    cameras: int, size: int, fps: int, episodes: int, frames: int
) -> tuple[list[list[np.ndarray]], np.ndarray, np.ndarray]:
    """The frames both writers get: the real-time run's frame pool, and per-episode joint vectors."""
    pools = frame_pool(cameras, size, fps)
    state = np.stack(
        [np.stack([synthetic_joints(e, k, len(JOINTS), fps) for k in range(frames)]) for e in range(episodes)]
    )
    action = np.stack(
        [
            np.stack([synthetic_joints(e, k + 1, len(JOINTS), fps) for k in range(frames)])
            for e in range(episodes)
        ]
    )
    return pools, state, action


def run_ours_fast(
    video: VideoSettings,
    pools: list[list[np.ndarray]],
    state: np.ndarray,
    action: np.ndarray,
    fps: int,
    size: int,
    workdir: Path,
) -> dict:
    """The project's writer fed as fast as possible: first add_frame .. end of the last save_episode."""
    cameras, pool = len(pools), len(pools[0])
    names = list(CAMERA_NAMES[:cameras])
    feats = DatasetFeatures(JOINTS, JOINTS, tuple(CameraSpec(n, size, size) for n in names))
    episodes, frames = state.shape[0], state.shape[1]
    # Hold a whole episode of raw frames if the encoders fall behind (LeRobot buffers PNGs on disk, unbounded).
    episode_mb = frames * cameras * size * size * 3 / 1e6
    root = workdir / f"cmp_ours_{video.encoder()}"
    shutil.rmtree(root, ignore_errors=True)
    writer = LeRobotWriter.create(
        root,
        fps,
        feats,
        robot_type="xarm6",
        video=video,
        max_buffer_mb=max(DEFAULT_MAX_BUFFER_MB, 1.25 * episode_mb),
    )
    add_ms: list[float] = []
    saves: list[float] = []
    refused = 0
    total_frames = 0
    cpu0, t0 = os.times(), time.perf_counter()
    for ep in range(episodes):
        writer.start_episode("benchmark")
        for k in range(frames):
            images = {n: pools[i][k % pool] for i, n in enumerate(names)}
            a = time.perf_counter()
            try:
                writer.add_frame(state[ep, k], action[ep, k], images)
            except RecordingError:
                refused += 1
            add_ms.append((time.perf_counter() - a) * 1e3)
        s = time.perf_counter()
        info = writer.save_episode()
        saves.append(time.perf_counter() - s)
        total_frames += info.length
    t1, cpu1 = time.perf_counter(), os.times()
    writer.close()
    wall = t1 - t0
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    size_mb = dataset_mb(root)
    videos = sorted(root.rglob("*.mp4"))
    in_file = codec_in_file(root)
    shutil.rmtree(root, ignore_errors=True)
    return {
        "writer": "evo1_ros recording.dataset.writer.LeRobotWriter add_frame + save_episode",
        "encoder": video.encoder(),
        "codec_in_file": in_file,
        "encoder_options": {"pix_fmt": video.pix_fmt, **video.options()},
        "episodes": episodes,
        "frames_per_episode": frames,
        "frames_total": total_frames,
        "refused_frames_encoder_behind": refused,
        "videos": len(videos),
        **timing_summary(episodes, frames, wall, cpu, add_ms, [{"save_s": round(x, 3)} for x in saves]),
        "dataset_mb": round(size_mb, 2),
    }


def run_lerobot(
    python: Path,
    npz: Path,
    encoder: str,
    crf: int | None,
    fps: int,
    episodes: int,
    frames: int,
    threads_per_camera: int,
    workdir: Path,
    timeout_s: float,
) -> dict:
    """LeRobot 0.3.3's writer on the same frames, in its own venv (bench/lerobot_writer_baseline.py)."""
    out = workdir / f"cmp_lerobot_{encoder}.json"
    out.unlink(missing_ok=True)
    cmd = [
        str(python),
        str(BASELINE),
        "--frames-npz", str(npz),
        "--root", str(workdir / f"cmp_lerobot_{encoder}"),
        "--out", str(out),
        "--fps", str(fps),
        "--episodes", str(episodes),
        "--frames", str(frames),
        "--vcodec", encoder,
        "--image-writer-threads-per-camera", str(threads_per_camera),
    ]  # fmt: skip
    if crf is not None:
        cmd += ["--crf", str(crf)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"LeRobot baseline did not finish within {timeout_s:g} s"}
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        return {"error": f"LeRobot baseline exited {proc.returncode}", "output_tail": tail}
    return json.loads(out.read_text())


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 3)


def compare_lerobot(args: argparse.Namespace, python: Path, workdir: Path) -> dict:
    codecs = [c.strip() for c in (args.compare_codec or args.codec).split(",") if c.strip()]
    pools, state, action = comparison_inputs(
        args.cameras, args.size, args.fps, args.compare_episodes, args.compare_frames
    )
    npz = workdir / "cmp_frames.npz"
    np.savez(
        npz,
        images=np.stack([np.stack(p) for p in pools]),
        state=state,
        action=action,
        joint_names=np.array(JOINTS),
        camera_names=np.array(CAMERA_NAMES[: args.cameras]),
    )
    runs = []
    for codec in codecs:
        video = comparison_video(codec, args.compare_settings)
        enc = video.encoder()
        print(
            f"comparison {enc}: {args.compare_episodes} episodes x {args.compare_frames} frames, "
            f"{args.cameras} x {args.size}x{args.size}, as fast as possible: ours ...",
            flush=True,
        )
        ours = run_ours_fast(video, pools, state, action, args.fps, args.size, workdir)
        print(f"comparison {enc}: LeRobot 0.3.3 ...", flush=True)
        # LeRobot always keeps its own options (g=2, crf=30, no preset); only the codec follows ours.
        theirs = run_lerobot(
            python,
            npz,
            enc,
            None,
            args.fps,
            args.compare_episodes,
            args.compare_frames,
            args.lerobot_image_writer_threads,
            workdir,
            args.lerobot_timeout,
        )
        run: dict = {"codec": enc, "ours": ours, "lerobot": theirs}
        if "error" not in theirs:
            ratio = {
                key: _ratio(ours.get(key), theirs.get(key))
                for key in (
                    "wall_s",
                    "cpu_s",
                    "add_frame_ms_p50",
                    "add_frame_ms_p99",
                    "save_latency_s_mean",
                    "save_latency_s_max",
                    "dataset_mb",
                )
            }
            run["ratio_ours_over_lerobot"] = ratio
            run["wall_target_le_one_third_met"] = ratio["wall_s"] is not None and ratio["wall_s"] <= 1 / 3
        runs.append(run)
    return {
        "method": (
            "same frames (frame_pool seed 0, joints from synthetic_joints) through both writers, fed as fast "
            "as possible; wall/CPU from the first add_frame to the end of the last save_episode; CPU = "
            "process user+system (all threads); ratio = ours / LeRobot's"
        ),
        "setup": {
            "episodes": args.compare_episodes,
            "frames_per_episode": args.compare_frames,
            "fps": args.fps,
            "cameras": args.cameras,
            "size": args.size,
            "encoder_settings": args.compare_settings,
            "lerobot_image_writer_threads_per_camera": args.lerobot_image_writer_threads,
            "lerobot_python": str(python),
        },
        "runs": runs,
    }


def print_comparison(cmp: dict) -> None:
    st = cmp["setup"]
    print(
        f"\nLeRobot 0.3.3 writer vs ours: {st['episodes']} episodes x {st['frames_per_episode']} frames, "
        f"{st['cameras']} x {st['size']}x{st['size']} @ {st['fps']} fps, as fast as possible"
    )
    for run in cmp["runs"]:
        ours, theirs = run["ours"], run["lerobot"]
        print(f"\n[{run['codec']}]")
        print(f"  ours:    {ours['encoder']} {ours['encoder_options']} -> {ours['codec_in_file']}")
        if "error" in theirs:
            print(f"  LeRobot: FAILED: {theirs['error']}")
            for line in theirs.get("output_tail", []):
                print(f"    {line}")
            continue
        print(
            f"  LeRobot: {theirs['encoder']} {theirs['encoder_options']} -> {theirs['codec_in_file']}, "
            f"{theirs['image_writer_threads']} PNG writer threads"
        )
        ratio = run["ratio_ours_over_lerobot"]
        rows = [
            ("frames written", "frames_total"),
            ("wall s (first add .. last save)", "wall_s"),
            ("CPU s", "cpu_s"),
            ("CPU cores used", "cpu_cores_used"),
            ("frames per s", "frames_per_s"),
            ("add_frame p50 ms", "add_frame_ms_p50"),
            ("add_frame p99 ms", "add_frame_ms_p99"),
            ("add_frame max ms", "add_frame_ms_max"),
            ("save latency mean s", "save_latency_s_mean"),
            ("save latency max s", "save_latency_s_max"),
            ("dataset MB", "dataset_mb"),
        ]
        print(f"  {'':<32} {'ours':>10} {'LeRobot':>10} {'ours/LeRobot':>13}")
        for label, key in rows:
            r = ratio.get(key)
            print(
                f"  {label:<32} {ours.get(key, '-')!s:>10} {theirs.get(key, '-')!s:>10} "
                f"{'-' if r is None else f'{r:.3f}':>13}"
            )
        verdict = "met" if run["wall_target_le_one_third_met"] else "NOT met"
        print(f"  target wall ours/LeRobot <= 1/3: {verdict} ({ratio['wall_s']})")
        parts = ", ".join(
            f"{s['save_s']} (PNG wait {s['png_wait_s']}, encode {s['encode_s']})" for s in theirs["saves"]
        )
        print(f"  LeRobot save_episode s per episode: {parts}")


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
    ap.add_argument("--no-realtime", action="store_true", help="skip the real-time runs (comparison only)")
    cmp = ap.add_argument_group("comparison with LeRobot 0.3.3's writer")
    cmp.add_argument(
        "--compare-lerobot",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"run the side-by-side comparison (default: on when {COMPAT_PYTHON.relative_to(REPO)} exists)",
    )
    cmp.add_argument("--compare-episodes", type=int, default=3, help="episodes per writer (default 3)")
    cmp.add_argument("--compare-frames", type=int, default=150, help="frames per episode (default 150)")
    cmp.add_argument(
        "--compare-codec",
        default=None,
        help="comma list of codecs to compare, each on both sides (default: --codec)",
    )
    cmp.add_argument(
        "--compare-settings",
        choices=("lerobot", "project"),
        default="lerobot",
        help="encoder options of the project's writer: LeRobot's g=2 crf=30 no preset (default), or its own",
    )
    cmp.add_argument(
        "--lerobot-image-writer-threads",
        type=int,
        default=4,
        help="LeRobot AsyncImageWriter threads per camera (default 4, as lerobot record; 0 = inline PNGs)",
    )
    cmp.add_argument("--lerobot-python", type=Path, default=COMPAT_PYTHON, help="python of the lerobot venv")
    cmp.add_argument("--lerobot-timeout", type=float, default=1800.0, help="seconds per LeRobot run")
    args = ap.parse_args(argv)
    if args.compare_episodes < 1 or args.compare_frames < 1 or args.lerobot_image_writer_threads < 0:
        print("recorder_throughput: error: need --compare-episodes/--compare-frames >= 1", file=sys.stderr)
        return 2
    compare = args.compare_lerobot if args.compare_lerobot is not None else args.lerobot_python.exists()
    if compare and not args.lerobot_python.exists():
        print(
            f"recorder_throughput: error: {args.lerobot_python} not found (build it: scripts/compat.sh)",
            file=sys.stderr,
        )
        return 2
    if args.seconds <= 0 or args.fps <= 0 or not 1 <= args.cameras <= 5 or args.size < 16 or args.size % 2:
        print(
            "recorder_throughput: error: need seconds > 0, fps > 0, 1..5 cameras, even size >= 16",
            file=sys.stderr,
        )
        return 2
    results = []
    comparison: dict | None = None
    with tempfile.TemporaryDirectory(prefix="evo1_bench_") as tmp:
        for codec in [] if args.no_realtime else [c.strip() for c in args.codec.split(",") if c.strip()]:
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
        if compare:
            comparison = compare_lerobot(args, args.lerobot_python, Path(tmp))
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
    if results:
        print()
        for label, key in rows:
            cells = [
                f"{r['frames_recorded']}/{r['ticks']}" if key is None else str(r.get(key, "-"))
                for r in results
            ]
            print(f"{label:<30} " + " ".join(f"{c:>14}" for c in cells))
    if comparison is not None:
        print_comparison(comparison)
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
        "lerobot_comparison": comparison
        if comparison is not None
        else {"skipped": "--no-compare-lerobot" if args.compare_lerobot is False else "no .venv-compat-033"},
    }
    if args.no_realtime:
        payload["results_note"] = "real-time runs skipped (--no-realtime)"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``evo1 dataset {validate,info,synth,preview}``: LeRobot v2.1 dataset tools (no torch, no rclpy).

Registered by ``evo1_ros/cli/main.py`` through ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evo1_ros.paths import config_file
from recording.dataset.errors import DatasetError, RecordingError

_FMT = argparse.RawDescriptionHelpFormatter


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dataset`` command and its subcommands to the ``evo1`` parser."""
    ds = subparsers.add_parser(
        "dataset",
        help="LeRobot v2.1 dataset tools",
        formatter_class=_FMT,
        description="LeRobot v2.1 dataset tools: validate, info, synth, preview.",
        epilog="Example: evo1 dataset validate ~/datasets/xarm6_pick_can",
    )
    sub = ds.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser(
        "validate",
        help="check a dataset against the LeRobot v2.1 rules; exit 1 on any problem",
        formatter_class=_FMT,
        description="Check schema, counts, every episode parquet, every video (fully decoded: codec, size, "
        "frame count, pts) and recomputed per-episode stats. Prints one line per problem.",
        epilog="Example: evo1 dataset validate ~/datasets/xarm6_pick_can\n"
        "         evo1 dataset validate DIR --no-decode   # skip decoding videos (faster)",
    )
    p.add_argument("dir", type=Path, help="dataset root (the folder holding meta/, data/, videos/)")
    p.add_argument(
        "--no-decode", action="store_true", help="do not decode videos (skips frame/pts/image-stat checks)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--strict",
        action="store_true",
        help="image stats differing from the decoded video are errors (default: warnings; codec loss on "
        "noisy frames shifts them)",
    )
    p.set_defaults(func=_guard("validate", _cmd_validate))

    p = sub.add_parser(
        "info",
        help="summarise a dataset",
        formatter_class=_FMT,
        description="Print version, fps, robot type, totals, features, cameras and episodes of a dataset.",
        epilog="Example: evo1 dataset info ~/datasets/xarm6_pick_can --episodes",
    )
    p.add_argument("dir", type=Path, help="dataset root")
    p.add_argument("--episodes", action="store_true", help="also list every episode")
    p.add_argument("--json", action="store_true", help="print info.json plus tasks and episodes as JSON")
    p.set_defaults(func=_guard("info", _cmd_info))

    p = sub.add_parser(
        "synth",
        help="write a synthetic dataset through the real writer",
        formatter_class=_FMT,
        description="Create a dataset of synthetic episodes (smooth moving pictures, sinusoidal joints) with "
        "the same writer the recorder uses. Features come from --features, with optional overrides.",
        epilog="Example: evo1 dataset synth /tmp/synth --episodes 3 --frames 60 --cameras base:64x48,wrist:64x48",
    )
    p.add_argument("dir", type=Path, help="dataset root to create (must not exist or be empty)")
    p.add_argument("--episodes", type=int, default=2, help="number of episodes (default 2)")
    p.add_argument("--frames", type=int, default=30, help="frames per episode (default 30)")
    p.add_argument("--fps", type=int, default=None, help="frame rate (default: the features config)")
    p.add_argument(
        "--features", type=Path, default=None, help="features YAML (default: config/dataset_features.yaml)"
    )
    p.add_argument(
        "--cameras",
        default=None,
        help="override cameras: NAME:WxH[,NAME:WxH...], or 'none' (e.g. base:64x48,wrist:64x48)",
    )
    p.add_argument("--codec", default=None, help="video codec: auto, libsvtav1, libx264 (default: config)")
    p.add_argument(
        "--task",
        action="append",
        default=None,
        help="task prompt or catalogue id (config/tasks.yaml); repeat to cycle several",
    )
    p.add_argument("--append", action="store_true", help="add episodes to an existing dataset")
    p.set_defaults(func=_guard("synth", _cmd_synth))

    p = sub.add_parser(
        "preview",
        help="PNG contact sheet of an episode (frames + state/action plots)",
        formatter_class=_FMT,
        description="Render evenly spaced frames of every camera and plots of observation.state and action "
        "for one episode into a PNG.",
        epilog="Example: evo1 dataset preview ~/datasets/xarm6_pick_can --episode 0 -o ep0.png",
    )
    p.add_argument("dir", type=Path, help="dataset root")
    p.add_argument("--episode", type=int, required=True, help="episode index")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .png path")
    p.add_argument("--frames", type=int, default=6, help="frames per camera row (default 6)")
    p.set_defaults(func=_guard("preview", _cmd_preview))


def _guard(name: str, fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn expected failures into one line on stderr and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (DatasetError, RecordingError, ValueError, OSError, KeyError) as e:
            msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
            print(f"evo1 dataset {name}: error: {msg}", file=sys.stderr)
            return 2

    return run


def _cmd_validate(args: argparse.Namespace) -> int:
    from recording.dataset.validator import validate_dataset
    from recording.progress import Progress

    bar = Progress("validating")
    try:
        report = validate_dataset(
            args.dir, decode_videos=not args.no_decode, progress=bar, strict=getattr(args, "strict", False)
        )
    finally:
        bar.close()
    if args.json:
        print(
            json.dumps(
                {
                    "root": str(report.root),
                    "ok": report.ok,
                    "episodes": report.episodes,
                    "frames": report.frames,
                    "videos_decoded": report.videos_decoded,
                    "problems": [{"path": p.path, "reason": p.reason} for p in report.problems],
                    "warnings": [{"path": p.path, "reason": p.reason} for p in report.warnings],
                },
                indent=2,
            )
        )
    else:
        for warn in report.warnings:
            print(f"warning: {warn}")
        for prob in report.problems:
            print(prob)
        if report.ok:
            print(
                f"OK: {report.root}: {report.episodes} episode(s), {report.frames} frame(s), "
                f"{report.videos_decoded} video(s) decoded"
            )
        else:
            print(f"FAILED: {report.root}: {len(report.problems)} problem(s)")
    return 0 if report.ok else 1


def _cmd_info(args: argparse.Namespace) -> int:
    from recording.dataset.atomic_io import read_json, read_jsonl
    from recording.dataset.layout import EPISODES_PATH, INFO_PATH, TASKS_PATH

    root: Path = args.dir
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory")
    info = read_json(root / INFO_PATH)
    if not isinstance(info, dict):
        raise DatasetError(f"{root / INFO_PATH}: not a JSON object")
    tasks = read_jsonl(root / TASKS_PATH)
    episodes = read_jsonl(root / EPISODES_PATH)
    if args.json:
        print(json.dumps({"info": info, "tasks": tasks, "episodes": episodes}, indent=2))
        return 0
    fps = info.get("fps") or 0
    frames = info.get("total_frames", 0)
    dur = f"{frames / fps:.1f} s" if isinstance(fps, int) and fps > 0 else "?"
    print(f"dataset        {root}")
    print(f"version        {info.get('codebase_version')}   robot_type {info.get('robot_type')}   fps {fps}")
    print(
        f"episodes       {info.get('total_episodes')}   frames {frames} ({dur})   tasks {info.get('total_tasks')}"
        f"   videos {info.get('total_videos')}   chunks {info.get('total_chunks')}"
    )
    print("features")
    for key, spec in (info.get("features") or {}).items():
        extra = ""
        vinfo = spec.get("info") if isinstance(spec, dict) else None
        if isinstance(vinfo, dict):
            extra = (
                f"  {vinfo.get('video.codec')} {vinfo.get('video.pix_fmt')} @ {vinfo.get('video.fps')} fps"
            )
        names = spec.get("names") if isinstance(spec, dict) else None
        shown = f"  {names}" if isinstance(names, list) and spec.get("dtype") != "video" else ""
        print(f"  {key:<34} {spec.get('dtype')!s:<8} {spec.get('shape')}{extra}{shown}")
    print("tasks")
    for t in tasks:
        print(f"  {t.get('task_index')}: {t.get('task')}")
    if args.episodes:
        print("episodes")
        for e in episodes:
            print(f"  {e.get('episode_index'):>5}  {e.get('length'):>6} frames  {e.get('tasks')}")
    return 0


_CAM = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*):(\d+)x(\d+)$")


def _parse_cameras(text: str) -> dict[str, dict[str, int]]:
    if text.strip().lower() == "none":
        return {}
    out: dict[str, dict[str, int]] = {}
    for part in text.split(","):
        m = _CAM.match(part.strip())
        if not m:
            raise ValueError(f"--cameras: {part!r} is not NAME:WIDTHxHEIGHT (e.g. base:64x48)")
        out[m.group(1)] = {"width": int(m.group(2)), "height": int(m.group(3))}
    return out


def _cmd_synth(args: argparse.Namespace) -> int:
    from recording.dataset.features import DatasetFeatures, load_features_config
    from recording.dataset.synth import write_synthetic_dataset
    from recording.dataset.video_settings import VideoSettings
    from recording.progress import Progress
    from recording.tasks_catalogue import load_tasks, resolve_task

    if args.episodes < 1 or args.frames < 1:
        raise ValueError(f"--episodes and --frames must be >= 1 (got {args.episodes}, {args.frames})")
    _, cfg = load_features_config(args.features or config_file("dataset_features.yaml", must_exist=False))
    cfg: dict[str, Any] = dict(cfg)
    if args.cameras is not None:
        cfg["cameras"] = _parse_cameras(args.cameras)
    features = DatasetFeatures.from_config(cfg)
    video_cfg = dict(cfg.get("video") or {})
    if args.codec is not None:
        video_cfg["codec"] = args.codec
    video = VideoSettings.from_config(video_cfg)
    appending = args.append and (Path(args.dir) / "meta" / "info.json").is_file()
    fps = args.fps if args.fps is not None else int(cfg.get("fps", 30))
    if fps < 1:
        raise ValueError(f"--fps must be >= 1, got {fps}")
    tasks = None
    if args.task:
        catalogue_path = config_file("tasks.yaml", must_exist=False)
        catalogue = load_tasks(catalogue_path) if catalogue_path.is_file() else {}
        tasks = [resolve_task(catalogue, t) for t in args.task]
    bar = Progress("writing")
    try:
        saved = write_synthetic_dataset(
            args.dir,
            episodes=args.episodes,
            frames=args.frames,
            fps=fps,
            features=features,
            # Appending keeps the dataset's codec unless --codec asks for one (then it must match).
            video=None if appending and args.codec is None else video,
            robot_type=cfg.get("robot_type"),
            tasks=tasks,
            append=args.append,
            progress=bar,
        )
    finally:
        bar.close()
    detail = "appended" if appending else f"{video.encoder()}, {len(features.cameras)} camera(s)"
    print(f"wrote {len(saved)} episode(s) x {args.frames} frame(s) to {args.dir} ({detail})")
    return 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from recording.dataset.preview import write_preview

    if args.frames < 1:
        raise ValueError(f"--frames must be >= 1, got {args.frames}")
    out = write_preview(args.dir, args.episode, args.output, args.frames)
    print(f"wrote {out}")
    return 0

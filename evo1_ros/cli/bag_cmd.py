"""`evo1 bag record|play|to-lerobot|eval`: rosbag2 tools (recording/bag/, the bag_record / bag_play nodes).

Imports rclpy/torch only in the command that runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from recording.bag.bagio import STORAGES, BagError


def _settings() -> dict[str, Any]:
    from evo1_ros.paths import config_file

    try:
        return yaml.safe_load(config_file("bag.yaml").read_text()) or {}
    except FileNotFoundError:
        return {}


def _size(text: str) -> int:
    units = {"k": 1e3, "m": 1e6, "g": 1e9}
    t = text.strip().lower().rstrip("b")
    try:
        return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"size {text!r}: use bytes or e.g. 500M, 2G") from None


def cmd_record(args: argparse.Namespace) -> int:
    from evo1_ros.nodes.bag_record import run_record
    from recording.bag.bagio import BagWriter, SplitPolicy, load_profiles

    topics = list(args.topics)
    if args.profile:
        profiles = load_profiles()
        if args.profile not in profiles:
            raise BagError(f"unknown profile {args.profile!r} (config/bag.yaml has {sorted(profiles)})")
        topics += profiles[args.profile]
    if not topics and not args.all:
        raise BagError("name the topics, a --profile, or --all")
    rec = _settings().get("record", {})
    storage = args.storage or rec.get("storage", "mcap")
    out = args.output or f"rosbag2_{__import__('time').strftime('%Y_%m_%d-%H_%M_%S')}"
    writer = BagWriter(out, storage, SplitPolicy(args.max_bag_size, args.max_bag_duration))
    return run_record(
        writer,
        None if args.all else list(dict.fromkeys(topics)),
        duration=args.duration,
        episode_split=args.split_episodes,
        depth=int(rec.get("depth", 100)),
        discovery_period=float(rec.get("discovery_period", 0.5)),
        ros_args=args.ros_args,
    )


def cmd_play(args: argparse.Namespace) -> int:
    from evo1_ros.nodes.bag_play import PlayOptions, run_play

    opts = PlayOptions(
        rate=args.rate,
        start=args.start,
        duration=args.duration,
        topics=args.topics or None,
        loop=args.loop,
        clock=args.clock,
        clock_rate=float(_settings().get("play", {}).get("clock_rate", 100.0)),
        wait_for_subscribers=args.wait_for_subscribers,
    )
    return run_play(args.bag, opts, ros_args=args.ros_args)


def cmd_to_lerobot(args: argparse.Namespace) -> int:
    from recording.bag.to_lerobot import ConvertOptions, convert, parse_overrides, recorder_parameters
    from recording.dataset.validator import validate_dataset

    params = recorder_parameters(args.config, parse_overrides(args.param))
    opts = ConvertOptions(
        params,
        task=args.task,
        task_topic=args.task_topic,
        episodes=args.episodes,
        use_sim_time=args.use_sim_time,
    )
    report = convert(args.bags, args.output, opts, progress=lambda s: print(s, file=sys.stderr))
    for s in report.skipped:
        print(f"skipped: {s}", file=sys.stderr)
    fps = report.frames / report.seconds if report.seconds > 0 else 0.0
    print(
        f"{args.output}: {len(report.episodes)} episode(s), {report.frames} frames "
        f"({report.dropped} ticks dropped as stale) in {report.seconds:.1f} s ({fps:.0f} frames/s)"
    )
    if not report.episodes:
        print(
            f"{args.output}: no episode had frames, nothing written (see the warnings above)", file=sys.stderr
        )
        return 1
    if not args.no_validate:
        result = validate_dataset(Path(args.output))
        if not result.ok:
            for p in result.problems:
                print(f"invalid: {p}", file=sys.stderr)
            return 1
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from evo1_ros.evaluation.bag_eval import main_eval  # torch: only for this command
    from evo1_ros.model.errors import CheckpointError

    try:
        return main_eval(args)
    except CheckpointError as e:
        raise BagError(str(e)) from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bag",
        help="record/play rosbag2 bags, convert them to LeRobot v2.1, score a checkpoint on them",
        description="Standard rosbag2 bags (metadata v9, MCAP or sqlite3) without the ros2 CLI.",
    )
    sub = p.add_subparsers(dest="bag_command", metavar="BAG_COMMAND")
    sub.required = True

    r = sub.add_parser("record", help="record topics into a bag (Ctrl-C closes it)")
    r.add_argument("topics", nargs="*", help="topics to record")
    r.add_argument("--profile", help="named topic set of config/bag.yaml (policy, teleop)")
    r.add_argument("--all", action="store_true", help="every topic that appears")
    r.add_argument("-o", "--output", help="bag folder (default rosbag2_<date>)")
    r.add_argument("-s", "--storage", choices=STORAGES, help="default: config/bag.yaml (mcap)")
    r.add_argument("--max-bag-size", type=_size, default=0, help="split at this size (e.g. 2G)")
    r.add_argument("--max-bag-duration", type=float, default=0.0, help="split after this many seconds")
    r.add_argument(
        "--split-episodes", action="store_true", help="new bag file per recorder episode (/recorder/status)"
    )
    r.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)")
    r.set_defaults(func=_guard(cmd_record))

    pl = sub.add_parser("play", help="publish a bag's raw messages with their original timing")
    pl.add_argument("bag", help="bag folder (or a folder of split bags)")
    pl.add_argument("-r", "--rate", type=float, default=1.0)
    pl.add_argument("--start", type=float, default=0.0, help="s after the bag's start")
    pl.add_argument("--duration", type=float, default=0.0, help="s to play (0 = to the end)")
    pl.add_argument("--topics", nargs="+", help="only these topics")
    pl.add_argument("-l", "--loop", action="store_true")
    pl.add_argument("--clock", action="store_true", help="publish /clock from the bag time")
    pl.add_argument(
        "--wait-for-subscribers",
        type=float,
        default=0.0,
        help="s to wait for every topic to have a subscriber",
    )
    pl.set_defaults(func=_guard(cmd_play))

    t = sub.add_parser("to-lerobot", help="bag(s) -> LeRobot v2.1 dataset with the recorder's frame logic")
    t.add_argument("bags", nargs="+")
    t.add_argument("-o", "--output", required=True, help="dataset folder (created, or appended to)")
    t.add_argument("--config", type=Path, help="recorder parameters YAML (default config/recorder.yaml)")
    t.add_argument("-p", "--param", action="append", default=[], help="recorder parameter NAME:=VALUE")
    t.add_argument("--task", default="", help="task id or text for every episode")
    t.add_argument("--task-topic", default="", help="std_msgs/String topic holding the task")
    t.add_argument(
        "--episodes", choices=["bag", "events"], default="bag", help="episode = bag file, or recorder events"
    )
    t.add_argument("--use-sim-time", action="store_true", help="frame clock from the bag's /clock")
    t.add_argument("--no-validate", action="store_true")
    t.set_defaults(func=_guard(cmd_to_lerobot))

    e = sub.add_parser("eval", help="open-loop scoring of a checkpoint against a bag or LeRobot dataset")
    e.add_argument("source", help="bag folder or LeRobot v2.1 dataset folder")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("-o", "--output", required=True, help="report folder (report.json + PNG plots)")
    e.add_argument("--task", default="", help="instruction (default: the dataset's task)")
    e.add_argument("--config", type=Path, help="recorder parameters YAML used to read a bag")
    e.add_argument("-p", "--param", action="append", default=[], help="recorder parameter NAME:=VALUE")
    e.add_argument("--horizon", type=int, default=0, help="steps compared (0 = the model's horizon)")
    e.add_argument("--stride", type=int, default=1, help="score every N-th frame")
    e.add_argument("--view-map", nargs="+", help="camera per model view ('' = masked); default base wrist ''")
    e.add_argument("--units", default="rep103", choices=["rep103", "official_xarm6"], help="checkpoint units")
    e.add_argument("--device", default="cpu")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=_guard(cmd_eval))
    for q in (r, pl):
        q.add_argument("--ros-args", nargs=argparse.REMAINDER, default=[], help="passed to rclpy")


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except BagError as e:
            print(f"evo1 bag {args.bag_command}: {e}", file=sys.stderr)
            return 2
        except (ValueError, OSError) as e:
            print(f"evo1 bag {args.bag_command}: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
            return 2

    return run

"""`evo1 train`: two-stage Evo-1 training from LeRobot v2.1 datasets (registered in evo1_ros/cli/main.py).

Also runs as `python -m evo1_ros.train` so that `torchrun` / `accelerate launch` can start it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_EPILOG = """Examples:
  evo1 train --dataset ~/datasets/xarm6_pick_can --out runs/pick_can_s1 --vlm ~/models/InternVL3-1B
  evo1 train config/train.yaml stage=stage2 init=runs/pick_can_s1 out=runs/pick_can_s2 steps=80000
  evo1 train --dataset DS --out runs/s1 resume=true        # continue an interrupted run
  torchrun --nproc_per_node 2 -m evo1_ros.train --dataset DS --out runs/s1 device=cuda
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "items",
        nargs="*",
        default=[],
        help="optional config YAML (default config/train.yaml), then key=value overrides (dotted keys, YAML values)",
    )
    p.add_argument("--dataset", action="append", default=None, help="dataset folder (repeat for several)")
    p.add_argument("--out", default=None, help="output folder (checkpoints, logs; usable as checkpoint:=)")
    p.add_argument("--vlm", default=None, help="local InternVL3-1B folder for the backbone weights")
    p.add_argument("--init", default=None, help="project checkpoint DIR or official:DIR to fine-tune from")
    p.add_argument("--stage", choices=("stage1", "stage2"), default=None)
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train Evo-1 (stage 1: action head, stage 2: everything) on recorded episodes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Two-stage Evo-1 training from LeRobot v2.1 datasets. Settings: config/train.yaml, "
        "overridden by key=value arguments and the flags below.",
        epilog=_EPILOG,
    )
    add_arguments(p)
    p.set_defaults(func=run, extra_dest="items")  # key=value after flags: main.py appends them here


def config_from_args(args: argparse.Namespace):
    """Merge the YAML, key=value items and flags into a validated TrainConfig."""
    from .config import load_config

    items = list(args.items)
    path = None
    if items and "=" not in items[0]:
        path = Path(items.pop(0))
    bad = [i for i in items if "=" not in i]
    if bad:
        from .config import TrainConfigError

        raise TrainConfigError(f"expected key=value overrides after the config file, got {bad}")
    overrides = list(items)
    if args.dataset:
        overrides.append("datasets=[" + ", ".join(_yaml_str(d) for d in args.dataset) + "]")
    for flag, key in (("out", "out"), ("vlm", "vlm"), ("init", "init"), ("stage", "stage")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={_yaml_str(value)}")
    if args.resume:
        overrides.append("resume=true")
    return load_config(path, overrides)


def _yaml_str(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def run(args: argparse.Namespace) -> int:
    from .config import TrainConfigError

    try:
        cfg = config_from_args(args)
        from .trainer import train

        train(cfg)
    except TrainConfigError as e:
        print(f"evo1 train: error: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evo1_ros.train", epilog=_EPILOG)
    add_arguments(parser)
    return run(parser.parse_intermixed_args(argv))

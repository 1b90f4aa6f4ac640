"""`evo1` command line: one subcommand per tool, each defined in its own module.

A subcommand module exposes ``register(subparsers) -> None`` that adds its parser and sets
``func=callable(args) -> int`` on it. Modules are imported lazily by name so `evo1 dataset ...`
never imports torch or rclpy.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module that registers it
SUBCOMMANDS: dict[str, str] = {
    "launch": "evo1_ros.cli.launch_cmd",
    "dataset": "recording.dataset.cli",
    "bag": "evo1_ros.cli.bag_cmd",
    "sim": "evo1_ros.cli.sim_cmd",
    "eval": "evo1_ros.cli.eval_cmd",
    "serve": "evo1_ros.serve.cli",
    "train": "evo1_ros.train.cli",
    "demo": "evo1_ros.cli.demo_cmd",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evo1",
        description="evo1_ros tools: launch node sets, LeRobot v2.1 datasets, ...",
        epilog="Example: evo1 launch teleop_record camera_topic:=/cameras/front/image_raw",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in SUBCOMMANDS.items():
        if only is not None and name != only:
            continue
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Import only the module of the subcommand asked for (keeps `evo1 dataset` free of rclpy/torch).
    only = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    parser = build_parser(only)
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `evo1 launch NAME --dry-run a:=1`: argparse stops filling positionals at the first flag, so
        # a command may take leftover `name:=value` tokens (set `extra_dest` on its parser).
        dest = getattr(args, "extra_dest", None)
        if dest is None or any(tok.startswith("-") for tok in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        setattr(args, dest, [*getattr(args, dest), *extra])
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

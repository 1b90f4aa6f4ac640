"""`evo1 launch NAME [arg:=value ...]`: start a launch description's node set without `ros2 launch`."""

from __future__ import annotations

import argparse
import sys

from evo1_ros.launcher.description import (
    LaunchError,
    available_descriptions,
    load_description,
    parse_cli_arguments,
    resolve,
)
from evo1_ros.launcher.runner import build_processes, run_launch


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "launch",
        help="start a node set from config/launch/NAME.yaml (same nodes as launch/NAME.launch.py)",
        description=(
            "Start the nodes of a launch description (config/launch/NAME.yaml) as child processes with "
            "loopback-only discovery and the Fast DDS shared-memory profile. Ctrl-C stops them all; "
            "the exit code is non-zero if a node failed."
        ),
        epilog=(
            "examples:\n  evo1 launch xarm_driver sim:=true\n"
            "  evo1 launch xarm_driver --show-args\n  evo1 launch xarm_driver robot_ip:=192.168.1.200 --dry-run"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="?", help="launch description name or path to a YAML file")
    parser.add_argument("launch_args", nargs="*", metavar="arg:=value", help="launch arguments")
    parser.add_argument("--show-args", action="store_true", help="list the description's arguments and exit")
    parser.add_argument("--dry-run", action="store_true", help="print the command lines and exit")
    parser.add_argument("--list", action="store_true", help="list available launch descriptions")
    parser.set_defaults(func=run, extra_dest="launch_args")


def run(args: argparse.Namespace) -> int:
    try:
        if args.list or not args.name:
            print("available launch descriptions: " + ", ".join(available_descriptions()))
            return 0 if args.list else 2
        spec = load_description(args.name)
        if args.show_args:
            print(f"{spec.name}: {spec.description}")
            for a in spec.arguments:
                default = "(required)" if a.default is None else f"default {a.default!r}"
                choices = f", one of {list(a.choices)}" if a.choices else ""
                print(f"  {a.name}:=  {a.description} [{default}{choices}]")
            return 0
        values = parse_cli_arguments(spec, args.launch_args)
        nodes = resolve(spec, values)
        if not nodes:
            raise LaunchError("no node to start with these arguments (all conditions false)")
        if args.dry_run:
            import tempfile
            from pathlib import Path

            with tempfile.TemporaryDirectory() as tmp:
                for proc in build_processes(nodes, Path(tmp)):
                    print(f"{proc.name}: {' '.join(proc.argv)}")
            return 0
        return run_launch(nodes)
    except LaunchError as exc:
        print(f"evo1 launch: error: {exc}", file=sys.stderr)
        return 2

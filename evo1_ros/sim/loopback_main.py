"""`xarm_loopback_controller`: run the loopback xArm controller from the command line.

Lets the real xArm SDK, the project's driver node or UFACTORY example scripts talk to a simulated
xArm6 on a 127.x.y.z address. Needs root (ports 502/30001-30003) or
`sysctl net.ipv4.ip_unprivileged_port_start=0`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from evo1_ros.sim.loopback_config import LoopbackConfig, load_config
from evo1_ros.sim.loopback_controller import LoopbackController
from evo1_ros.sim.loopback_host import validate_loopback_host

EPILOG = """examples:
  xarm_loopback_controller --host 127.0.0.2
  xarm_loopback_controller --host 127.0.0.2 --config config/xarm_loopback_controller.yaml
  xarm_loopback_controller --host 127.0.0.3 --initial-joints 0 -0.5 -0.5 0 0.5 0 --reply-delay 0.05
  xarm_loopback_controller --host 127.0.0.4 --collision-after 10 --drop-after 20
then, in Python:  from xarm.wrapper import XArmAPI; arm = XArmAPI('127.0.0.2', is_radian=True)

ports 502 and 30001-30003 need root, or once: sysctl net.ipv4.ip_unprivileged_port_start=0
"""


def build_parser() -> argparse.ArgumentParser:
    """The CLI definition (kept separate so tests can check it)."""
    parser = argparse.ArgumentParser(
        prog="xarm_loopback_controller",
        description="Loopback xArm6 controller speaking the xArm SDK's private TCP protocol "
        "(command port 502, report ports 30001/30002/30003) on a 127.x.y.z address.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="loopback address to bind (127.x.y.z); default: config value")
    parser.add_argument("--config", help="YAML settings (config/xarm_loopback_controller.yaml layout)")
    plant = parser.add_argument_group("plant")
    plant.add_argument(
        "--initial-joints", type=float, nargs=6, metavar="RAD", help="start pose (6 values, rad)"
    )
    plant.add_argument("--max-joint-speed", type=float, metavar="RAD_S", help="servo tracking speed limit")
    plant.add_argument(
        "--max-joint-acc", type=float, metavar="RAD_S2", help="servo tracking acceleration limit"
    )
    plant.add_argument("--plant-rate", type=float, metavar="HZ", help="plant update rate")
    plant.add_argument(
        "--gripper-initial", type=float, metavar="PULSES", help="gripper start (850 open, 0 closed)"
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--reply-delay", type=float, metavar="S", help="delay every command reply")
    faults.add_argument(
        "--tool-bus-delay", type=float, metavar="S", help="delay tool RS-485 (gripper) replies"
    )
    faults.add_argument(
        "--c24-speed-limit", type=float, metavar="RAD_S", help="servo_j implied-speed limit (C24)"
    )
    faults.add_argument("--collision-after", type=float, metavar="S", help="raise C31 this long after start")
    faults.add_argument(
        "--drop-after", type=float, metavar="S", help="drop all connections this long after start"
    )
    faults.add_argument(
        "--tool-baud-index", type=int, metavar="N", help="initial tool RS-485 baud index (11 = 2M)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def config_from_args(args: argparse.Namespace) -> LoopbackConfig:
    """Merge the YAML file (if any) with command-line overrides."""
    cfg = load_config(args.config) if args.config else LoopbackConfig()
    if args.host is not None:
        cfg.host = args.host
    overrides = {
        "initial_joints": args.initial_joints,
        "max_joint_speed": args.max_joint_speed,
        "max_joint_acc": args.max_joint_acc,
        "plant_rate_hz": args.plant_rate,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(cfg, name, list(value) if isinstance(value, list) else value)
    if args.gripper_initial is not None:
        cfg.gripper.initial_pulses = args.gripper_initial
    if args.tool_baud_index is not None:
        cfg.gripper.tool_baud_index = args.tool_baud_index
    if args.reply_delay is not None:
        cfg.faults.reply_delay_s = args.reply_delay
    if args.tool_bus_delay is not None:
        cfg.faults.tool_bus_delay_s = args.tool_bus_delay
    if args.c24_speed_limit is not None:
        cfg.faults.c24_speed_limit = args.c24_speed_limit
    if args.collision_after is not None:
        cfg.faults.collision_after_s = args.collision_after
    if args.drop_after is not None:
        cfg.faults.drop_connections_after_s = args.drop_after
    return cfg.validate()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: serve until SIGINT/SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        cfg = config_from_args(args)
        host = validate_loopback_host(cfg.host)
    except (OSError, ValueError) as exc:
        print(f"xarm_loopback_controller: {exc}", file=sys.stderr)
        return 2
    ctrl = LoopbackController(host=host, config=cfg)
    ctrl.core.add_fault_listener(
        lambda code: logging.getLogger("evo1_ros.sim.loopback").warning("error C%d", code)
    )
    try:
        ctrl.start()
    except OSError as exc:
        print(f"xarm_loopback_controller: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("evo1_ros.sim.loopback").info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(f"xarm_loopback_controller ready on {ctrl.host} (Ctrl-C to stop)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        ctrl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

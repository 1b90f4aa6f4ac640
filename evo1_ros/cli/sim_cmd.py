"""`evo1 sim ...`: simulation tools. `record-expert` records scripted-expert demonstrations.

The demonstrations take the same path as a teleoperated recording: the expert publishes on
`/xarm/joint_trajectory`, the real driver streams it through the real xArm SDK to the loopback
controller inside the sim node, and the real recorder node writes the LeRobot v2.1 dataset from
`/xarm/joint_states`, the commanded trajectory and the rendered camera images.
"""

from __future__ import annotations

import argparse
import sys
import time

from evo1_ros.sim.tasks import TASK_NAMES

EPILOG = """examples:
  evo1 sim record-expert --task pick_place_can --episodes 10 ~/evo1_datasets/sim_pick_can
  evo1 sim record-expert --task can_stacking --episodes 5 --seed 100 --image-size 448 /tmp/stack
then:  evo1 dataset validate ~/evo1_datasets/sim_pick_can
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `evo1 sim` and its subcommands."""
    sim = subparsers.add_parser("sim", help="MuJoCo workcell tools (scripted-expert demonstrations)")
    sub = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    sub.required = True
    p = sub.add_parser(
        "record-expert",
        help="record scripted-expert episodes through the real driver and recorder",
        description="Start the sim node + xArm driver + recorder, and record N seeded episodes of the "
        "scripted expert as a LeRobot v2.1 dataset (failed episodes are discarded unless --keep-failures).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset_dir", help="dataset folder (created, or appended to)")
    p.add_argument("--task", default="pick_place_can", choices=TASK_NAMES, help="task (default %(default)s)")
    p.add_argument("--episodes", type=int, default=5, help="episodes to record (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="layout seed of the first episode (+1 per episode)")
    p.add_argument(
        "--image-size", type=int, default=224, help="square camera images, px (default %(default)s)"
    )
    p.add_argument("--fps", type=int, default=15, help="dataset fps = camera rate (default %(default)s)")
    p.add_argument("--time-limit", type=float, default=60.0, help="s per episode (default %(default)s)")
    p.add_argument("--keep-failures", action="store_true", help="also save episodes the expert failed")
    p.add_argument("--robot-ip", default="", help="127.x address of the simulated controller (default: free)")
    p.add_argument("--video-codec", default="libx264", help="recorder codec (default %(default)s)")
    p.add_argument("--log-dir", default="", help="folder for the child processes' logs (default: temp)")
    p.set_defaults(func=_record_expert)


def _record_expert(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        print("evo1 sim record-expert: --episodes must be >= 1", file=sys.stderr)
        return 2
    if not 16 <= args.image_size <= 1024:
        print("evo1 sim record-expert: --image-size must be 16..1024", file=sys.stderr)
        return 2
    from evo1_ros.cli.sim_episodes import EpisodeError, SimStack, StackSettings, ros_client
    from recording.progress import Progress

    stack = SimStack(
        StackSettings(
            task=args.task,
            seed=args.seed,
            image_size=args.image_size,
            camera_rate=float(args.fps),
            robot_ip=args.robot_ip,
            dataset_dir=args.dataset_dir,
            fps=args.fps,
            video_codec=args.video_codec,
            episode_time_limit=args.time_limit + 30.0,
            log_dir=args.log_dir,
        )
    ).start()
    saved = failed = 0
    progress = Progress(f"record-expert {args.task}")
    try:
        with ros_client() as client:
            client.wait_ready(90.0, stack.check_alive)
            client.wait_recorder_streams(60.0, stack.check_alive)
            for i in range(args.episodes):
                seed = args.seed + i
                progress(i, args.episodes)
                client.home()
                client.reset_scene(args.task, seed)
                index = client.start_recording(args.task)
                t0 = time.monotonic()
                success, _motions, error = client.run_expert(args.task, args.time_limit)
                keep = success or args.keep_failures
                client.stop_recording(save=keep)
                saved += keep
                failed += not success
                verdict = "success" if success else f"FAILED ({error or 'task not solved'})"
                action = f"saved as episode {index}" if keep else "discarded"
                print(f"\nseed {seed}: {verdict} in {time.monotonic() - t0:.1f} s, {action}", file=sys.stderr)
            progress(args.episodes, args.episodes)
            progress.close()
    except EpisodeError as exc:
        progress.close()
        print(f"evo1 sim record-expert: {exc}\n(logs: {stack.log_dir})", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    print(
        f"{saved} episode(s) saved to {args.dataset_dir} ({args.episodes - failed}/{args.episodes} expert "
        f"successes); check with: evo1 dataset validate {args.dataset_dir}"
    )
    return 0 if saved else 1

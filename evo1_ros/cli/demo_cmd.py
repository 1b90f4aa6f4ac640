"""`evo1 demo` (what `make demo` runs): the whole product loop in simulation, end to end.

record scripted-expert episodes (real sim + driver + recorder) → `evo1 train` a small Evo-1 on them →
`evo1 eval sim` that checkpoint closed loop (real sim + driver + evo1_policy) → a summary with the
honest success rate and the paths of the videos and plots. Each step is the public CLI run as a child
process, so the demo exercises exactly what a user runs. Settings: config/demo.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from evo1_ros.paths import config_file

EPILOG = """examples:
  evo1 demo                                   # record → train → evaluate (config/demo.yaml)
  evo1 demo --checkpoint runs/my_ckpt         # skip recording and training (make demo DEMO_CHECKPOINT=DIR)
  evo1 demo --out /tmp/demo --episodes 8      # more demonstrations
"""


class DemoError(RuntimeError):
    """A step of the demo failed; the message names the step and where its log is."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `evo1 demo`."""
    p = subparsers.add_parser(
        "demo",
        help="record expert demos in simulation, train a small Evo-1, evaluate it closed loop",
        description="The end-to-end simulation demo: scripted-expert demonstrations recorded by the real "
        "recorder, `evo1 train` on them, then `evo1 eval sim` of the trained checkpoint through the real "
        "ROS graph, and a summary. Settings in config/demo.yaml.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default="", help="demo settings YAML (default config/demo.yaml)")
    p.add_argument("--out", default="", help="output folder (default: `out` of the config)")
    p.add_argument(
        "--checkpoint",
        default=os.environ.get("DEMO_CHECKPOINT", ""),
        help="evaluate this checkpoint; skips recording and training (env DEMO_CHECKPOINT)",
    )
    p.add_argument("--episodes", type=int, default=0, help="expert episodes to record (default: config)")
    p.add_argument("--eval-episodes", type=int, default=0, help="evaluation episodes (default: config)")
    p.add_argument("--train-steps", type=int, default=0, help="training steps (default: config)")
    p.set_defaults(func=_demo)


def load_demo_config(path: str | Path | None = None) -> dict[str, Any]:
    """Read config/demo.yaml (or `path`) and check the keys the demo needs."""
    path = Path(path) if path else config_file("demo.yaml")
    if not path.is_file():
        raise DemoError(f"demo config not found: {path}")
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [k for k in ("out", "task", "image_size", "record", "train", "eval") if k not in cfg]
    if missing:
        raise DemoError(f"{path}: missing keys {missing}")
    return cfg


def train_overrides(train: dict[str, Any]) -> list[str]:
    """The config's `train:` mapping as `evo1 train` key=value arguments (JSON values: valid YAML too)."""
    return [f"{key}={json.dumps(value)}" for key, value in train.items()]


def _run_step(name: str, argv: list[str], log: Path) -> float:
    """Run one CLI step as a child process, its output both on screen and in `log`; return seconds."""
    print(f"\n[demo] {name}: {' '.join(argv)}", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with log.open("wb") as sink:
        # Bytes, not lines: progress bars redraw with '\r' and must reach the terminal as they are.
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(4096):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            sink.write(chunk)
        rc = proc.wait()
    if rc != 0:
        raise DemoError(f"step '{name}' failed (exit {rc}); its output is in {log}")
    return time.monotonic() - start


def _evo1() -> list[str]:
    return [sys.executable, "-m", "evo1_ros.cli.main"]


def _demo(args: argparse.Namespace) -> int:
    try:
        return _demo_steps(args)
    except DemoError as e:
        print(f"evo1 demo: {e}", file=sys.stderr)
        return 2


def _demo_steps(args: argparse.Namespace) -> int:
    cfg = load_demo_config(args.config or None)
    out = Path(args.out or cfg["out"]).expanduser().resolve()
    task, size = str(cfg["task"]), str(cfg["image_size"])
    rec, ev = dict(cfg["record"]), dict(cfg["eval"])
    train = dict(cfg["train"])
    if args.episodes:
        rec["episodes"] = args.episodes
    if args.eval_episodes:
        ev["episodes"] = args.eval_episodes
    if args.train_steps:
        train["steps"] = args.train_steps
        train["ckpt_interval"] = args.train_steps
    logs = out / "logs"
    timings: dict[str, float] = {}

    if args.checkpoint:
        checkpoint = Path(args.checkpoint).expanduser().resolve()
        if not checkpoint.is_dir():
            raise DemoError(f"checkpoint folder not found: {checkpoint}")
        print(f"[demo] using checkpoint {checkpoint}; recording and training skipped")
    else:
        dataset, checkpoint = out / "dataset", out / "checkpoint"
        if dataset.exists() or checkpoint.exists():
            raise DemoError(f"{out} already holds a demo run; remove it or pass --out DIR")
        timings["record"] = _run_step(
            "record expert demonstrations",
            [*_evo1(), "sim", "record-expert", str(dataset), "--task", task,
             "--episodes", str(rec["episodes"]), "--seed", str(rec["seed"]), "--image-size", size,
             "--fps", str(rec["fps"]), "--time-limit", str(rec["time_limit"]), "--log-dir", str(logs / "record")],
            logs / "record.log",
        )  # fmt: skip
        timings["train"] = _run_step(
            "train Evo-1 (tiny, CPU)",
            [*_evo1(), "train", "--dataset", str(dataset), "--out", str(checkpoint), *train_overrides(train)],
            logs / "train.log",
        )
    eval_dir = out / "eval"
    timings["eval"] = _run_step(
        "closed-loop evaluation in simulation",
        [*_evo1(), "eval", "sim", "--policy", str(checkpoint), "--task", task,
         "--episodes", str(ev["episodes"]), "--seed", str(ev["seed"]), "--time-limit", str(ev["time_limit"]),
         "--image-size", size, "--out", str(eval_dir)],
        logs / "eval.log",
    )  # fmt: skip
    summary_path = eval_dir / "summary.json"
    if not summary_path.is_file():
        raise DemoError(f"evaluation wrote no {summary_path}")
    summary = json.loads(summary_path.read_text())
    _print_summary(summary, checkpoint, eval_dir, timings)
    return 0


def _print_summary(
    summary: dict[str, Any], checkpoint: Path, eval_dir: Path, timings: dict[str, float]
) -> None:
    videos = sorted(eval_dir.glob("*.mp4"))
    print("\n" + "=" * 72)
    print("evo1 demo — summary")
    print(f"  checkpoint:   {checkpoint}")
    print(
        f"  task:         {summary.get('task')}  —  {summary.get('successes')}/{summary.get('episodes')} "
        f"successes ({100 * float(summary.get('success_rate', 0.0)):.0f} %)"
    )
    if summary.get("mean_time_to_success") is not None:
        print(f"  mean time to success: {summary['mean_time_to_success']:.1f} s")
    lat = summary.get("inference_latency")
    if lat:
        print(
            f"  inference:    p50 {1000 * lat['p50']:.0f} ms, p95 {1000 * lat['p95']:.0f} ms over {lat['n']} chunks"
        )
    for episode in summary.get("per_episode", []):
        reason = episode.get("error") or ""
        print(f"    episode seed {episode.get('seed')}: {'success' if episode.get('success') else 'no success'}"
              f"{'  (' + str(reason) + ')' if reason else ''}")  # fmt: skip
    print(f"  summary:      {eval_dir / 'summary.json'}")
    if (eval_dir / "summary.png").is_file():
        print(f"  plot:         {eval_dir / 'summary.png'}")
    for v in videos:
        print(f"  video:        {v}")
    print("  time:         " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    print("=" * 72)

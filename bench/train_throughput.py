"""`evo1 train` throughput: samples/s and peak memory per stage and batch size, and the data loader alone.

Runs the real trainer (`evo1_ros.train.trainer.Trainer`: DataLoader workers decoding video + augmenting,
backbone, flow-matching head, AdamW) on a synthetic dataset written by the real writer, with random weights.
The loader-only row (windows/s with video decoding, N workers) shows whether data or compute limits a run.

Examples:
    .venv/bin/python bench/train_throughput.py                           # tiny model on CPU
    python bench/train_throughput.py --device cuda --size full           # on a GPU (bf16 autocast)
    .venv/bin/python bench/train_throughput.py --batch 8 --stages stage1 --steps 3

Writes bench/results/train_throughput.json (entries keyed by device/size are merged) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from evo1_ros.train.config import from_dict  # noqa: E402
from evo1_ros.train.data import ResumableBatchSampler, SampleOrder, WindowDataset  # noqa: E402
from evo1_ros.train.trainer import Trainer  # noqa: E402
from recording.dataset.features import CameraSpec, DatasetFeatures  # noqa: E402
from recording.dataset.synth import write_synthetic_dataset  # noqa: E402
from recording.dataset.video_settings import VideoSettings  # noqa: E402

RESULTS = REPO / "bench" / "results" / "train_throughput.json"
JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "drive_joint")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _config(args: argparse.Namespace, ds: Path, out: Path, stage: str, batch: int) -> Any:
    return from_dict(
        {
            "datasets": [str(ds)],
            "out": str(out),
            "stage": stage,
            "model": {"preset": args.size},
            "steps": args.warmup + args.steps,
            "batch_size": batch,
            "warmup_steps": 1,
            "num_workers": args.workers,
            "device": args.device,
            "bf16": True,
            "gradient_checkpointing": args.gradient_checkpointing,
            "progress": False,
            "tensorboard": False,
            "validate_datasets": "off",
            "ckpt_interval": 10**9,
            "threads": args.threads,
        }
    )


def bench_training(args: argparse.Namespace, ds: Path, tmp: Path, stage: str, batch: int) -> dict[str, Any]:
    """Steps/s of the real loop, timed after `warmup` steps (workers started, kernels warm)."""
    trainer = Trainer(_config(args, ds, tmp / f"{stage}_{batch}", stage, batch), log=lambda _: None)
    device = trainer.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    loader = trainer._loader(0, args.warmup + args.steps)
    it = iter(loader)
    t0 = None
    wait = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            wait = 0.0
        tw = time.perf_counter()
        batch_data = next(it)
        wait += time.perf_counter() - tw
        trainer.train_step(batch_data, step)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    assert t0 is not None
    seconds = time.perf_counter() - t0
    row = {
        "stage": stage,
        "batch": batch,
        "steps": args.steps,
        "samples_per_s": batch * args.steps / seconds,
        "step_ms": 1000 * seconds / args.steps,
        "data_wait_ms": 1000 * wait / args.steps,
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
    }
    if device.type == "cuda":
        row["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    row["peak_rss_mb"] = _peak_rss_mb()  # process-wide high-water mark (grows monotonically across rows)
    del it, loader, trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def bench_loader(args: argparse.Namespace, ds: Path, tmp: Path, batch: int) -> dict[str, Any]:
    """Windows/s of the DataLoader alone (video decoding + augmentation in `workers` processes)."""
    trainer = Trainer(_config(args, ds, tmp / "loader", "stage1", batch), log=lambda _: None)
    data = WindowDataset(trainer.plan, trainer.model.config, trainer.prompts, "train", True)
    n = args.loader_batches
    sampler = ResumableBatchSampler(SampleOrder(len(data), 0), batch, 0, n + 2)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler, num_workers=args.workers)
    it = iter(loader)
    next(it), next(it)  # workers up
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    seconds = time.perf_counter() - t0
    return {"workers": args.workers, "batch": batch, "windows_per_s": batch * n / seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:n]")
    ap.add_argument("--size", choices=("tiny", "full"), default="tiny", help="model preset (random weights)")
    ap.add_argument("--stages", nargs="+", default=["stage1", "stage2"], choices=("stage1", "stage2"))
    ap.add_argument("--batch", nargs="+", type=int, default=[8, 16])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per row")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--loader-batches", type=int, default=10)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--camera", default="320x240", help="WxH of the two synthetic cameras")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    w, h = (int(x) for x in args.camera.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="evo1_train_bench_") as tmp_name:
        tmp = Path(tmp_name)
        ds = tmp / "ds"
        features = DatasetFeatures(JOINTS, JOINTS, (CameraSpec("base", h, w), CameraSpec("wrist", h, w)))
        write_synthetic_dataset(
            ds, episodes=args.episodes, frames=args.frames, fps=30, features=features,
            video=VideoSettings(codec="libx264"),
        )  # fmt: skip
        rows = []
        for stage in args.stages:
            for batch in args.batch:
                rows.append(bench_training(args, ds, tmp, stage, batch))
                r = rows[-1]
                print(
                    f"{args.size:5s} {args.device:6s} {stage} batch {batch:3d}: {r['samples_per_s']:8.2f} samples/s "
                    f"({r['step_ms']:.0f} ms/step, waiting for data {r['data_wait_ms']:.0f} ms), "
                    + (f"peak GPU {r['peak_gpu_mem_mb']:.0f} MB, " if "peak_gpu_mem_mb" in r else "")
                    + f"peak RSS {r['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
        loader = bench_loader(args, ds, tmp, max(args.batch))
        print(
            f"data loader alone ({loader['workers']} workers, 2 cameras {args.camera}, augmentation on): "
            f"{loader['windows_per_s']:.1f} windows/s"
        )
    entry = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name(torch.device(args.device))
        if args.device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "size": args.size,
        "torch": torch.__version__,
        "camera": args.camera,
        "training": rows,
        "loader": loader,
        "load_average_1m_at_end": os.getloadavg()[0],  # shared machines: context for the figures
        "command": " ".join(sys.argv),
    }
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results[f"{args.device}/{args.size}"] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

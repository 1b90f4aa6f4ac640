"""Training checkpoints on disk: the project model format plus what a run needs to resume.

A checkpoint folder is a normal project checkpoint (`model.safetensors`, `config.json`, `norm_stats.json`,
tokenizer files — `Evo1Policy.from_pretrained` loads it) plus `training.json` (dataset fps, datasets,
stage, step; `evo1_ros.model.checkpoint_fps` reads the fps, the policy node's default control rate) and,
for resuming, `train_state.pt` (optimizer, scheduler, step, RNG states). Folders are written under a temporary name and renamed, so a
crash never leaves a half-written checkpoint that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

TRAINING_INFO_NAME = "training.json"
TRAIN_STATE_NAME = "train_state.pt"
CHECKPOINTS_DIR = "checkpoints"


def read_training_info(directory: str | Path) -> dict[str, Any] | None:
    """`training.json` of a checkpoint folder (None when absent, e.g. an imported official checkpoint)."""
    path = Path(directory) / TRAINING_INFO_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data


def step_dir(out: Path, step: int) -> Path:
    return out / CHECKPOINTS_DIR / f"step_{step:07d}"


def latest_checkpoint(out: Path) -> Path | None:
    """The resumable checkpoint with the highest step under `out/checkpoints` (complete ones only)."""
    root = out / CHECKPOINTS_DIR
    if not root.is_dir():
        return None
    found = sorted(p for p in root.glob("step_*") if (p / TRAIN_STATE_NAME).is_file() and p.is_dir())
    return found[-1] if found else None


def write_norm_stats(path: Path, stats: dict[str, Any]) -> None:
    """norm_stats.json in the official `main` layout, one entry per embodiment."""
    data = {
        arm: {
            "observation.state": {"min": s.state_min.tolist(), "max": s.state_max.tolist()},
            "action": {"min": s.action_min.tolist(), "max": s.action_max.tolist()},
        }
        for arm, s in stats.items()
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def save_checkpoint(
    directory: Path,
    model: Any,
    tokenizer: Any,
    stats: dict[str, Any],
    training_info: dict[str, Any],
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write a complete checkpoint folder atomically (temp folder + rename)."""
    import torch

    from evo1_ros.model.checkpoints.pretrained import NORM_STATS_NAME, save_pretrained

    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    save_pretrained(model, tmp, tokenizer=tokenizer)
    write_norm_stats(tmp / NORM_STATS_NAME, stats)
    (tmp / TRAINING_INFO_NAME).write_text(json.dumps(training_info, indent=2) + "\n", encoding="utf-8")
    if train_state is not None:
        torch.save(train_state, tmp / TRAIN_STATE_NAME)
    if directory.exists():
        old = directory.with_name(directory.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old)
    else:
        os.replace(tmp, directory)
    return directory


def export_final(source: Path, out: Path) -> None:
    """Copy a checkpoint's model files into `out` itself, so `out` is usable as `checkpoint:=`."""
    for f in source.iterdir():
        if f.is_file() and f.name != TRAIN_STATE_NAME:
            tmp = out / (f.name + ".tmp")
            shutil.copyfile(f, tmp)
            os.replace(tmp, out / f.name)


def prune_checkpoints(out: Path, keep: int) -> None:
    """Keep the newest `keep` step folders (0 = keep all)."""
    if keep <= 0:
        return
    root = out / CHECKPOINTS_DIR
    found = sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith((".tmp", ".old")))
    for p in found[:-keep]:
        shutil.rmtree(p, ignore_errors=True)

"""Loading a checkpoint for inference: device/dtype choice, format detection, training fps, `load_policy`.

One place for what every deployment does before its first forward pass — the policy node
(nodes/evo1_policy.py), `evo1 serve` (serve/server.py, which adds its norm-stats key handling and never
unpickles) and the bag evaluation. A checkpoint folder is either the project format (`model.safetensors`,
pretrained.py) or the official DeepSpeed one (`mp_rank_00_model_states.pt`, official.py); anything wrong
with it is one CheckpointError line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..policy import Evo1Policy
from .official import OFFICIAL_WEIGHTS
from .pretrained import WEIGHTS_NAME

# Written beside a project checkpoint by the trainer (evo1_ros/train/checkpoint_io.py): {"fps": 30, ...}
TRAINING_INFO_NAME = "training.json"
FORMATS = ("auto", "project", "official")


def resolve_device(text: str, name: str = "device") -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> a torch device string that exists on this machine.

    name: how the caller's user spells the setting (the ``device`` parameter, ``--device``), for the errors.
    """
    value = text.strip().lower()
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value == "cpu":
        return "cpu"
    if value == "cuda" or value.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {text!r}: no CUDA device is available here (use cpu or auto)")
        if ":" in value:
            index = value.split(":", 1)[1]
            if not index.isdigit() or int(index) >= torch.cuda.device_count():
                raise ValueError(
                    f"{name} {text!r}: this machine has {torch.cuda.device_count()} CUDA device(s), 0-based"
                )
        return value
    raise ValueError(f"{name} must be auto, cpu, cuda or cuda:N, got {text!r}")


DTYPES = ("float32", "bfloat16", "float16")  # besides "auto"


def resolve_dtype(text: str, device: str) -> str:
    """``auto`` = bfloat16 on a GPU (what Evo-1 runs in), float32 on the CPU; else the name given."""
    value = text.strip().lower()
    if value == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if value not in DTYPES:
        raise ValueError(f"dtype {text!r} must be auto, float32, bfloat16 or float16")
    return value


def checkpoint_format(directory: str | Path, fmt: str = "auto") -> str:
    """``project`` or ``official`` for a checkpoint folder; a missing folder or weights file raises."""
    path = Path(directory).expanduser()
    if fmt not in FORMATS:
        raise ValueError(f"checkpoint format {fmt!r} must be one of {list(FORMATS)}")
    if not str(directory).strip():
        raise CheckpointError("no checkpoint given: set the checkpoint parameter (checkpoint:=DIR)")
    if not path.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {path}")
    if fmt != "auto":
        return fmt
    if (path / WEIGHTS_NAME).is_file():
        return "project"
    if (path / OFFICIAL_WEIGHTS).is_file():
        return "official"
    raise CheckpointError(
        f"{path} holds neither {WEIGHTS_NAME} (project checkpoint) nor {OFFICIAL_WEIGHTS} (official Evo-1)"
    )


def checkpoint_fps(directory: str | Path) -> float | None:
    """The frame rate the checkpoint was trained at (``training.json`` ``fps``), or None if not recorded."""
    meta = Path(directory).expanduser() / TRAINING_INFO_NAME
    if not meta.is_file():
        return None
    try:
        fps = json.loads(meta.read_text(encoding="utf-8")).get("fps")
    except (json.JSONDecodeError, AttributeError) as exc:
        raise CheckpointError(f"{meta} is not a JSON object with an 'fps' entry: {exc}") from None
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise CheckpointError(f"{meta}: fps must be a positive number, got {fps!r}")
    return float(fps)


def load_policy(
    directory: str | Path,
    *,
    fmt: str = "auto",
    tokenizer_dir: str | Path | None = None,
    device: str = "auto",
    dtype: str = "auto",
    arm_key: str | None = None,
    dataset_key: str | None = None,
) -> Evo1Policy:
    """Load a checkpoint of either format for inference; anything wrong is one CheckpointError line.

    arm_key / dataset_key pick the norm_stats.json entry when it holds several arms / datasets.
    Official checkpoints are read weights-only: a file that pickles Python objects is refused.
    """
    kind = checkpoint_format(directory, fmt)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    path = Path(directory).expanduser()
    tok = Path(tokenizer_dir).expanduser() if tokenizer_dir else None
    keys = {"arm_key": arm_key, "dataset_key": dataset_key}
    try:
        if kind == "project":
            return Evo1Policy.from_pretrained(path, tokenizer_path=tok, device=dev, dtype=dt, **keys)
        return Evo1Policy.from_official(path, tokenizer_path=tok, device=dev, dtype=dt, **keys)
    except CheckpointError:
        raise
    except Exception as exc:  # torch/safetensors/json/tokenizer failures all mean "this folder is unusable"
        text = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"cannot load {kind} checkpoint {path}: {type(exc).__name__}: {text}") from exc


def model_info(policy: Evo1Policy) -> dict[str, Any]:
    """What a deployment reports about the loaded model."""
    cfg = policy.config
    return {
        "horizon": cfg.horizon,
        "state_dim": policy.norm_stats.state_dim,
        "action_dim": policy.norm_stats.action_dim,
        "num_views": cfg.num_views,
        "device": str(policy.device),
        "dtype": str(policy.model.action_head.dtype).replace("torch.", ""),
    }

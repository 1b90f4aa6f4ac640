"""Evo-1 in PyTorch. No ROS imports here (layer rule, docs/architecture.md §2).

Entry points: `Evo1Config` (dimensions), `Evo1Model` (the network), `Evo1Policy` (numpy in, robot-unit
actions out), `load_official_checkpoint` / `export_official_checkpoint` (original DeepSpeed layout),
`save_pretrained` / `load_pretrained` (project safetensors layout), `load_policy` (either format, ready for
inference, with `resolve_device` / `resolve_dtype` / `checkpoint_format` / `checkpoint_fps` / `model_info`).
"""

from .checkpoints.loading import (
    checkpoint_format,
    checkpoint_fps,
    load_policy,
    model_info,
    resolve_device,
    resolve_dtype,
)
from .checkpoints.official import export_official_checkpoint, load_official_checkpoint
from .checkpoints.pretrained import build_model, load_pretrained, save_pretrained
from .configuration import Evo1Config
from .errors import CheckpointError
from .modeling.evo1 import Evo1Model
from .policy import Evo1Policy
from .processing.normalization import NormStats

__all__ = [
    "CheckpointError",
    "Evo1Config",
    "Evo1Model",
    "Evo1Policy",
    "NormStats",
    "build_model",
    "checkpoint_format",
    "checkpoint_fps",
    "export_official_checkpoint",
    "load_official_checkpoint",
    "load_policy",
    "load_pretrained",
    "model_info",
    "resolve_device",
    "resolve_dtype",
    "save_pretrained",
]

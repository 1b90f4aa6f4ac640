"""Evo-1 in PyTorch. No ROS imports here (layer rule, docs/architecture.md §2).

Entry points: `Evo1Config` (dimensions), `Evo1Model` (the network), `Evo1Policy` (numpy in, robot-unit
actions out), `load_official_checkpoint` / `export_official_checkpoint` (original DeepSpeed layout),
`save_pretrained` / `load_pretrained` (project safetensors layout).
"""

from .checkpoint import build_model, load_pretrained, save_pretrained
from .config import Evo1Config
from .errors import CheckpointError
from .evo1 import Evo1Model
from .normalization import NormStats
from .official_checkpoint import export_official_checkpoint, load_official_checkpoint
from .policy import Evo1Policy

__all__ = [
    "CheckpointError",
    "Evo1Config",
    "Evo1Model",
    "Evo1Policy",
    "NormStats",
    "build_model",
    "export_official_checkpoint",
    "load_official_checkpoint",
    "load_pretrained",
    "save_pretrained",
]

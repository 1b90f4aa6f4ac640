"""Evo-1 in PyTorch. No ROS imports here (layer rule, docs/architecture.md §2).

Entry points: `Evo1Config` (dimensions), `Evo1Model` (the network), `Evo1Policy` (numpy in, robot-unit
actions out), `load_official_checkpoint` / `export_official_checkpoint` (original DeepSpeed layout),
`save_pretrained` / `load_pretrained` (project safetensors layout).
"""

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
    "export_official_checkpoint",
    "load_official_checkpoint",
    "load_pretrained",
    "save_pretrained",
]

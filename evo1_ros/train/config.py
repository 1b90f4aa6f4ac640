"""Training configuration: `config/train.yaml` + `key=value` overrides → a validated `TrainConfig`.

Mirrors the official `config.yaml` / command line (docs/evo1_model.md §8): datasets grouped by
embodiment with a `view_map`, stage 1 (head only) / stage 2 (everything), AdamW + warmup/cosine, grad clip,
augmentation. No torch here, so a config can be checked on any machine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from evo1_ros.paths import config_file

DEFAULT_CONFIG_NAME = "train.yaml"
STAGES = ("stage1", "stage2")
PAD_MODES = ("last_row", "mask")
VALIDATE_MODES = ("off", "fast", "full")
VIEW_NAMES = ("image_1", "image_2", "image_3")


class TrainConfigError(ValueError):
    """A configuration problem found before any compute; the message says what to fix (one line)."""


@dataclass
class DatasetEntry:
    """One LeRobot v2.1 dataset and how its cameras feed the model's views."""

    path: str
    embodiment: str = "xarm6"
    # model view (image_1..image_3) -> camera key ("observation.images.base" or "base"); None = the
    # dataset's cameras in order. A view left out is masked (trained as an absent camera).
    view_map: dict[str, str | None] | None = None


@dataclass
class TrainConfig:
    """Everything `evo1 train` needs; defaults follow the official README commands."""

    datasets: list[DatasetEntry] = field(default_factory=list)
    out: str = "runs/evo1"
    stage: str = "stage1"
    init: str = "random"  # random | <project checkpoint dir> | official:<dir>
    vlm: str | None = None  # local InternVL3-1B folder (random init of the head, VLM weights from here)
    tokenizer: str | None = None  # tokenizer folder; default: from init / vlm, else a byte-level one
    model: dict[str, Any] = field(default_factory=lambda: {"preset": "full"})
    steps: int = 20000
    batch_size: int = 16  # global: split evenly over processes
    lr: float = 1e-5
    weight_decay: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 1000
    grad_clip_norm: float = 1.0
    augmentation: bool = True
    pad_mode: str = "last_row"
    num_workers: int = 4
    frame_cache: bool = False
    bf16: bool = True
    gradient_checkpointing: bool = False
    seed: int = 42
    threads: int = 0  # torch CPU threads per process (0 = torch's default)
    device: str = "auto"
    ckpt_interval: int = 5000
    keep_checkpoints: int = 3
    val_episodes: int = 0  # last N episodes of each dataset held out for validation (0 = none)
    val_interval: int = 1000
    val_batches: int = 4
    log_interval: int = 10
    tensorboard: bool = True
    progress: bool = True
    validate_datasets: str = "fast"
    resume: bool = False
    stop_at_step: int | None = None  # end this run early at this step (checkpointed; resume later)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Reject values that cannot work; datasets themselves are checked by `data.resolve_datasets`."""
        problems: list[str] = []
        if not self.datasets:
            problems.append("no datasets: give `--dataset DIR` or a `datasets:` list in the config")
        if self.stage not in STAGES:
            problems.append(f"stage={self.stage!r}; use one of {STAGES}")
        if self.pad_mode not in PAD_MODES:
            problems.append(f"pad_mode={self.pad_mode!r}; use one of {PAD_MODES}")
        if self.validate_datasets not in VALIDATE_MODES:
            problems.append(f"validate_datasets={self.validate_datasets!r}; use one of {VALIDATE_MODES}")
        for name in ("steps", "batch_size", "ckpt_interval", "log_interval", "val_interval", "val_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append(f"{name} must be a positive integer (got {value!r})")
        for name in ("warmup_steps", "num_workers", "threads", "keep_checkpoints", "val_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problems.append(f"{name} must be an integer >= 0 (got {value!r})")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            problems.append(f"lr must be > 0 (got {self.lr!r})")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            problems.append(f"weight_decay must be >= 0 (got {self.weight_decay!r})")
        if not (isinstance(self.grad_clip_norm, (int, float)) and self.grad_clip_norm >= 0):
            problems.append(f"grad_clip_norm must be >= 0, 0 = off (got {self.grad_clip_norm!r})")
        if len(tuple(self.betas)) != 2:
            problems.append(f"betas must be two numbers (got {self.betas!r})")
        if self.stop_at_step is not None and (
            not isinstance(self.stop_at_step, int) or not 0 < self.stop_at_step <= self.steps
        ):
            problems.append(f"stop_at_step must be in 1..steps={self.steps} (got {self.stop_at_step!r})")
        if not isinstance(self.model, dict) or self.model.get("preset", "full") not in ("full", "tiny"):
            problems.append("model.preset must be 'full' or 'tiny'")
        if self.init != "random" and self.vlm is not None:
            problems.append(
                "give either `init` (a trained checkpoint) or `vlm` (InternVL3-1B weights), not both"
            )
        for entry in self.datasets:
            for view in entry.view_map or {}:
                if view not in VIEW_NAMES:
                    problems.append(f"dataset {entry.path}: view_map key {view!r}; use {VIEW_NAMES}")
        if problems:
            raise TrainConfigError("bad training config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Light type coercion for YAML/CLI values (ints given as 1e3, tuples given as lists)."""
    if isinstance(default, bool) or value is None:
        return value
    if isinstance(default, (int, float)) and isinstance(value, str):
        try:  # YAML 1.1 reads `1e-3` as a string
            value = float(value)
        except ValueError:
            return value
    if isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    return value


def _dataset_entry(item: Any) -> DatasetEntry:
    if isinstance(item, str):
        return DatasetEntry(path=item)
    if not isinstance(item, dict) or "path" not in item:
        raise TrainConfigError(f"each datasets entry needs a `path` (got {item!r})")
    unknown = sorted(set(item) - {f.name for f in fields(DatasetEntry)})
    if unknown:
        raise TrainConfigError(f"datasets entry {item['path']}: unknown key(s) {unknown}")
    view_map = item.get("view_map")
    if view_map is not None and not isinstance(view_map, dict):
        raise TrainConfigError(f"datasets entry {item['path']}: view_map must be a mapping image_k: camera")
    return DatasetEntry(
        path=str(item["path"]), embodiment=str(item.get("embodiment", "xarm6")), view_map=view_map
    )


def from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build a TrainConfig from a YAML mapping; unknown keys are an error (typos never fall back)."""
    if not isinstance(data, dict):
        raise TrainConfigError("the training config must be a YAML mapping")
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise TrainConfigError(f"unknown config key(s) {unknown}; known: {sorted(known)}")
    defaults = TrainConfig()
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "datasets":
            value = [_dataset_entry(v) for v in (value or [])]
        elif key == "model":
            value = dict(value or {})
            value.setdefault("preset", "full")
        elif key == "validate_datasets" and isinstance(value, bool):
            value = "fast" if value else "off"  # YAML 1.1 reads a bare `off` as false
        else:
            value = _coerce(key, value, getattr(defaults, key))
        kwargs[key] = value
    cfg = TrainConfig(**kwargs)
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` → (["a", "b"], YAML-parsed value)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise TrainConfigError(f"override {text!r} is not key=value (e.g. steps=2000, model.preset=tiny)")
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError as e:
        raise TrainConfigError(f"override {text!r}: value is not valid YAML ({e})") from None
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted `key=value` overrides to a raw config mapping (returns a new mapping)."""
    out = yaml.safe_load(yaml.safe_dump(data)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read the YAML (default config/train.yaml), apply overrides, validate."""
    path = Path(path) if path is not None else config_file(DEFAULT_CONFIG_NAME)
    if not path.is_file():
        raise TrainConfigError(f"training config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise TrainConfigError(f"{path}: not valid YAML ({e})") from None
    cfg = from_dict(apply_overrides(data, overrides or []))
    cfg.validate()
    return cfg

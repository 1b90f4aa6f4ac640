"""The project's checkpoint format and the shared model-building / weight-loading helpers.

A checkpoint directory holds `model.safetensors` + `config.json` (an Evo1Config) + `norm_stats.json`
(optional) and the tokenizer files beside them. Loading never falls back to random weights: a missing,
truncated or mismatching file raises CheckpointError saying what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..configuration import Evo1Config, torch_dtype
from ..errors import CheckpointError
from ..modeling.evo1 import Evo1Model
from ..processing.normalization import NormStats
from ..processing.tokenizer import find_tokenizer_dir

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
NORM_STATS_NAME = "norm_stats.json"


def _reset_rotary(model: Evo1Model) -> None:
    """Recompute the LLM's RoPE frequencies in float32 (non-persistent buffers: not in any checkpoint)."""
    llm = model.embedder.model.language_model
    device = llm.embed_tokens.weight.device
    llm.rotary_emb = type(llm.rotary_emb)(llm.config).to(device)


def place_model(model: Evo1Model, device: str | torch.device | None, dtype: str | None) -> Evo1Model:
    """Move/cast the model, keeping RoPE frequencies in float32 as transformers does."""
    kwargs: dict[str, Any] = {}
    if device is not None:
        kwargs["device"] = torch.device(device)
    if dtype is not None:
        kwargs["dtype"] = torch_dtype(dtype)
    if kwargs:
        model.to(**kwargs)
        _reset_rotary(model)
    return model


def build_model(config: Evo1Config, random_init: bool = True) -> Evo1Model:
    """An Evo1Model on config.device / config.dtype.

    random_init=False skips weight initialisation (built on the meta device, then materialised
    uninitialised) — only for callers that load every weight right after, which `load_state_into` checks.
    """
    if random_init:
        with torch.device(config.device):
            model = Evo1Model(config)
    else:
        with torch.device("meta"):
            model = Evo1Model(config)
        model.to_empty(device=torch.device(config.device))
    return place_model(model, config.device, config.dtype).eval()


def load_state_into(model: Evo1Model, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy a full state dict into the model; any missing/unexpected key or shape mismatch is an error."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} missing key(s): {', '.join(missing[:6])}{' …' if len(missing) > 6 else ''}"
        )
    if unexpected:
        problems.append(
            f"{len(unexpected)} unexpected key(s): {', '.join(unexpected[:6])}{' …' if len(unexpected) > 6 else ''}"
        )
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {'; '.join(mismatched[:4])}")
    if problems:
        raise CheckpointError(
            f"{source} does not fit this model configuration — "
            + " | ".join(problems)
            + ". Is the config.json the one saved with these weights?"
        )
    with torch.no_grad():
        for key, target in expected.items():
            target.copy_(state_dict[key].to(dtype=target.dtype, device=target.device))


@dataclass
class LoadedCheckpoint:
    """A model with everything saved beside it."""

    model: Evo1Model
    config: Evo1Config
    norm_stats: NormStats | None
    tokenizer_dir: Path | None


def save_pretrained(
    model: Evo1Model,
    directory: str | Path,
    norm_stats: NormStats | None = None,
    tokenizer: Any = None,
    arm_key: str = "robot",
) -> Path:
    """Write model.safetensors + config.json (+ norm_stats.json, tokenizer files)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "producer": "evo1_ros"})
    model.config.save(directory / CONFIG_NAME)
    if norm_stats is not None:
        norm_stats.save(directory / NORM_STATS_NAME, arm_key=arm_key)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory))
    return directory


def load_pretrained(
    directory: str | Path,
    device: str | None = None,
    dtype: str | None = None,
    arm_key: str | None = None,
    dataset_key: str | None = None,
    **config_overrides: Any,
) -> LoadedCheckpoint:
    """Load a checkpoint written by `save_pretrained` (device/dtype/other run-time fields may be overridden)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    weights = directory / WEIGHTS_NAME
    config_path = directory / CONFIG_NAME
    if not weights.is_file():
        hint = ""
        if (directory / "mp_rank_00_model_states.pt").is_file():
            hint = " — this is an official Evo-1 checkpoint; use load_official_checkpoint()"
        raise CheckpointError(f"{weights} is missing{hint}")
    if not config_path.is_file():
        raise CheckpointError(f"{config_path} is missing; the weights cannot be used without their config")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{config_path} is not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        data.update(config_overrides)
        if device is not None:
            data["device"] = device
        if dtype is not None:
            data["dtype"] = dtype
    try:
        config = Evo1Config.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{config_path}: {exc}") from exc
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{weights} is truncated or not a safetensors file ({exc})") from exc
    model = build_model(config, random_init=False)
    load_state_into(model, state, str(weights))
    norm_path = directory / NORM_STATS_NAME
    norm_stats = NormStats.load(norm_path, arm_key, dataset_key) if norm_path.is_file() else None
    return LoadedCheckpoint(
        model=model, config=config, norm_stats=norm_stats, tokenizer_dir=find_tokenizer_dir(directory)
    )

"""Import (and export) official Evo-1 checkpoints: `mp_rank_00_model_states.pt["module"]` + config.json +
norm_stats.json, in the remote-code InternVL key layout (docs/evo1_checkpoints.md §1–§4).

The official config.json only records the head's dimensions; the backbone is InternVL3-1B truncated to
14 LLM layers unless a `tiny_backbone` block (used by our reference fixtures and by `export` for
non-default sizes) describes another size.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..configuration import Evo1Config
from ..errors import CheckpointError
from ..modeling.evo1 import Evo1Model
from ..processing.normalization import NormStats
from ..processing.tokenizer import find_tokenizer_dir
from .official_keys import KeyMappingReport, official_to_ours, ours_to_official
from .pretrained import build_model, load_state_into
from .weight_sanity import DEFAULT_MAX_ABS, WeightIssue, warn_on_weight_issues

OFFICIAL_WEIGHTS = "mp_rank_00_model_states.pt"
_HEAD_FIELDS = {  # official config.json field → Evo1Config field
    "embed_dim": "embed_dim",
    "hidden_dim": "head_hidden_dim",
    "state_hidden_dim": "state_hidden_dim",
    "num_heads": "head_num_heads",
    "num_layers": "head_num_layers",
    "horizon": "horizon",
    "per_action_dim": "per_action_dim",
    "state_dim": "state_dim",
    "num_categories": "num_categories",
    "dropout": "dropout",
    "num_inference_timesteps": "num_inference_steps",
}
_LLM_LAYER = re.compile(r"^embedder\.model\.language_model\.model\.layers\.(\d+)\.")


@dataclass
class OfficialImport:
    """An imported model plus what the import found."""

    model: Evo1Model
    config: Evo1Config
    norm_stats: NormStats | None
    tokenizer_dir: Path | None
    report: KeyMappingReport
    weight_issues: list[WeightIssue] = field(default_factory=list)


def _backbone_fields(backbone: dict[str, Any]) -> dict[str, Any]:
    """Evo1Config fields from a `tiny_backbone` block (vision / projector / llm / text)."""
    vision, llm = backbone.get("vision", {}), backbone.get("llm", {})
    projector, text = backbone.get("projector", {}), backbone.get("text", {})
    out: dict[str, Any] = {}
    pairs = (
        (vision, "image_size", "image_size"),
        (vision, "patch_size", "patch_size"),
        (vision, "hidden_size", "vision_hidden_size"),
        (vision, "num_hidden_layers", "vision_num_layers"),
        (vision, "num_attention_heads", "vision_num_heads"),
        (vision, "intermediate_size", "vision_intermediate_size"),
        (vision, "layer_norm_eps", "vision_layer_norm_eps"),
        (projector, "downsample_ratio", "downsample_ratio"),
        (llm, "vocab_size", "vocab_size"),
        (llm, "hidden_size", "llm_hidden_size"),
        (llm, "num_hidden_layers_kept", "vlm_num_layers"),
        (llm, "num_attention_heads", "llm_num_heads"),
        (llm, "num_key_value_heads", "llm_num_kv_heads"),
        (llm, "intermediate_size", "llm_intermediate_size"),
        (llm, "rms_norm_eps", "rms_norm_eps"),
        (llm, "rope_theta", "rope_theta"),
        (llm, "max_position_embeddings", "max_position_embeddings"),
        (text, "max_text_length", "max_text_length"),
        (text, "views", "num_views"),
        (text, "img_context_token_id", "img_context_token_id"),
    )
    for block, key, name in pairs:
        if key in block:
            out[name] = block[key]
    return out


def config_from_official(official: dict[str, Any], **overrides: Any) -> Evo1Config:
    """Evo1Config from an official training config.json (head fields) + optional `tiny_backbone`."""
    if official.get("action_head", "flowmatching") != "flowmatching":
        raise CheckpointError(f"action_head={official['action_head']!r}: only 'flowmatching' exists in Evo-1")
    if official.get("return_cls_only", False):
        raise CheckpointError(
            "return_cls_only=true checkpoints are not supported (no released model uses it)"
        )
    values: dict[str, Any] = {
        ours: official[theirs] for theirs, ours in _HEAD_FIELDS.items() if theirs in official
    }
    if "tiny_backbone" in official:
        values.update(_backbone_fields(official["tiny_backbone"]))
    values.update(overrides)
    try:
        config = Evo1Config(**values)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"official config.json does not describe a valid model: {exc}") from exc
    if "action_dim" in official and int(official["action_dim"]) != config.action_dim:
        raise CheckpointError(
            f"config.json action_dim={official['action_dim']} but horizon×per_action_dim = {config.action_dim}"
        )
    return config


def read_official_state_dict(path: str | Path, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """`torch.load(..., weights_only=True)["module"]`, with clear errors for truncated or foreign files.

    DeepSpeed model-state files may also pickle Python objects beside the weights (configs, namespaces),
    which the safe loader refuses; `allow_pickle=True` loads them with full unpickling — only for files
    from a source you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"official weights file not found: {path}")
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=not allow_pickle)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        text = str(exc)
        unsupported = [line.strip() for line in text.splitlines() if "Unsupported global" in line]
        if unsupported and not allow_pickle:
            raise CheckpointError(
                f"{path} holds Python objects besides tensors ({unsupported[0][:200]}); the safe loader refuses "
                "them. If the file comes from a source you trust (e.g. the official release), pass allow_pickle=True"
            ) from exc
        first_line = text.splitlines()[0] if text else ""
        raise CheckpointError(
            f"{path} could not be read ({type(exc).__name__}: {first_line[:200]}); the file is truncated or corrupt"
        ) from exc
    if not isinstance(payload, dict) or "module" not in payload:
        keys = sorted(payload)[:8] if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"{path} has no 'module' entry (found {keys}); is it a DeepSpeed model-states file?"
        )
    module = payload["module"]
    if not isinstance(module, dict) or not module:
        raise CheckpointError(f"{path}['module'] is empty or not a state dict")
    bad = [k for k, v in module.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}['module'] holds non-tensor entries: {bad[:5]}")
    if all(k.startswith("module.") for k in module):
        module = {k[len("module.") :]: v for k, v in module.items()}
    return module


def load_official_checkpoint(
    directory: str | Path,
    tokenizer_path: str | Path | None = None,
    arm_key: str | None = None,
    dataset_key: str | None = None,
    max_abs: float = DEFAULT_MAX_ABS,
    allow_pickle: bool = False,
    **config_overrides: Any,
) -> OfficialImport:
    """Map an official checkpoint onto our model; every model tensor must be filled (else CheckpointError).

    allow_pickle: see `read_official_state_dict` (needed for DeepSpeed files that pickle non-tensor objects).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{config_path} is missing (the official checkpoint's training config)")
    try:
        official_config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{config_path} is not valid JSON: {exc}") from exc
    if not isinstance(official_config, dict):
        raise CheckpointError(f"{config_path} must hold a JSON object")
    official = read_official_state_dict(directory / OFFICIAL_WEIGHTS, allow_pickle=allow_pickle)

    if "vlm_num_layers" not in config_overrides and "tiny_backbone" not in official_config:
        layers = {int(m.group(1)) for k in official if (m := _LLM_LAYER.match(k))}
        if layers:
            config_overrides["vlm_num_layers"] = max(layers) + 1
    config = config_from_official(official_config, **config_overrides)

    ours, leftover = official_to_ours(official, config.vlm_num_layers)
    model = build_model(config, random_init=False)
    expected = model.state_dict()
    report = KeyMappingReport(
        unmapped=sorted(leftover + [k for k in ours if k not in expected]),
        missing=sorted(k for k in expected if k not in ours),
        mapped=sum(1 for k in ours if k in expected),
    )
    if report.missing:
        raise CheckpointError(
            f"{directory / OFFICIAL_WEIGHTS} does not provide every weight ({report.summary()}); "
            "refusing to run with randomly initialised parts"
        )
    issues = warn_on_weight_issues(official, max_abs=max_abs, source=str(directory / OFFICIAL_WEIGHTS))
    load_state_into(
        model, {k: v for k, v in ours.items() if k in expected}, str(directory / OFFICIAL_WEIGHTS)
    )
    norm_path = directory / "norm_stats.json"
    norm_stats = NormStats.load(norm_path, arm_key, dataset_key) if norm_path.is_file() else None
    return OfficialImport(
        model=model,
        config=config,
        norm_stats=norm_stats,
        tokenizer_dir=find_tokenizer_dir(tokenizer_path, directory),
        report=report,
        weight_issues=issues,
    )


def official_config_dict(config: Evo1Config) -> dict[str, Any]:
    """The official config.json fields for this model (+ `tiny_backbone` when the backbone is not InternVL3-1B)."""
    data: dict[str, Any] = {
        "vlm_name": "OpenGVLab/InternVL3-1B",
        "action_head": "flowmatching",
        "return_cls_only": False,
        "action_dim": config.action_dim,
    }
    data.update({theirs: getattr(config, ours) for theirs, ours in _HEAD_FIELDS.items()})
    default = Evo1Config()
    backbone_fields = _backbone_fields(_tiny_backbone_block(default))
    if any(getattr(config, name) != getattr(default, name) for name in backbone_fields):
        data["tiny_backbone"] = _tiny_backbone_block(config)
    return data


def _tiny_backbone_block(config: Evo1Config) -> dict[str, Any]:
    return {
        "vision": {
            "image_size": config.image_size,
            "patch_size": config.patch_size,
            "hidden_size": config.vision_hidden_size,
            "num_hidden_layers": config.vision_num_layers,
            "num_attention_heads": config.vision_num_heads,
            "intermediate_size": config.vision_intermediate_size,
            "layer_norm_eps": config.vision_layer_norm_eps,
        },
        "projector": {"downsample_ratio": config.downsample_ratio},
        "llm": {
            "vocab_size": config.vocab_size,
            "hidden_size": config.llm_hidden_size,
            "num_hidden_layers_kept": config.vlm_num_layers,
            "num_attention_heads": config.llm_num_heads,
            "num_key_value_heads": config.llm_num_kv_heads,
            "intermediate_size": config.llm_intermediate_size,
            "rms_norm_eps": config.rms_norm_eps,
            "rope_theta": config.rope_theta,
            "max_position_embeddings": config.max_position_embeddings,
        },
        "text": {
            "max_text_length": config.max_text_length,
            "views": config.num_views,
            "img_context_token_id": config.img_context_token_id,
        },
    }


def export_official_checkpoint(
    model: Evo1Model,
    directory: str | Path,
    norm_stats: NormStats | None = None,
    arm_key: str = "robot",
    tokenizer: Any = None,
) -> Path:
    """Write our model in the official layout (fused qkv, `mlp1`, `language_model.model.*`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"module": ours_to_official(state)}, str(directory / OFFICIAL_WEIGHTS))
    (directory / "config.json").write_text(json.dumps(official_config_dict(model.config), indent=2) + "\n")
    if norm_stats is not None:
        norm_stats.save(directory / "norm_stats.json", arm_key=arm_key)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory / "tokenizer"))
    return directory

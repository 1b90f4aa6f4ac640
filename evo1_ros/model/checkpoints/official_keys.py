"""Key mapping between the official Evo-1 state dict (remote-code InternVL layout) and ours.

Official → ours (docs/evo1_checkpoints.md §4):
* `embedder.model.vision_model.*` → `embedder.model.vision_tower.*` with `class_embedding` → `cls_token`,
  `position_embedding` → `position_embeddings`, `patch_embedding` → `patch_embeddings.projection`,
  `encoder.layers.i` → `encoder.layer.i`, fused `attn.qkv` split (rows q, k, v) → `attention.{q,k,v}_proj`,
  `attn.proj` → `attention.projection_layer`, `norm1/norm2` → `layernorm_before/layernorm_after`,
  `ls1/ls2` → `lambda_1/lambda_2`, `mlp.fc1/fc2` unchanged;
* `embedder.model.mlp1.{0,1,3}` → `embedder.model.multi_modal_projector.{layer_norm,linear_1,linear_2}`;
* `embedder.model.language_model.model.*` → `embedder.model.language_model.*`;
* `action_head.*` unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

_VIT_OFF = "embedder.model.vision_model."
_VIT_OURS = "embedder.model.vision_tower."
_LLM_OFF = "embedder.model.language_model.model."
_LLM_OURS = "embedder.model.language_model."
_MLP1_OFF = "embedder.model.mlp1."
_PROJ_OURS = "embedder.model.multi_modal_projector."

_EMBED_RENAMES = {
    "embeddings.class_embedding": "embeddings.cls_token",
    "embeddings.position_embedding": "embeddings.position_embeddings",
    "embeddings.patch_embedding.weight": "embeddings.patch_embeddings.projection.weight",
    "embeddings.patch_embedding.bias": "embeddings.patch_embeddings.projection.bias",
}
_LAYER_RENAMES = {
    "attn.proj.weight": "attention.projection_layer.weight",
    "attn.proj.bias": "attention.projection_layer.bias",
    "norm1.weight": "layernorm_before.weight",
    "norm1.bias": "layernorm_before.bias",
    "norm2.weight": "layernorm_after.weight",
    "norm2.bias": "layernorm_after.bias",
    "ls1": "lambda_1",
    "ls2": "lambda_2",
    "mlp.fc1.weight": "mlp.fc1.weight",
    "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight",
    "mlp.fc2.bias": "mlp.fc2.bias",
}
_MLP1_RENAMES = {"0": "layer_norm", "1": "linear_1", "3": "linear_2"}
_VIT_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")
_OUR_VIT_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_LLM_LAYER = re.compile(r"^layers\.(\d+)\.")


@dataclass
class KeyMappingReport:
    """What happened to each key: unmapped = official keys we have no place for; missing = ours not filled."""

    unmapped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mapped: int = 0

    def summary(self) -> str:
        parts = [f"{self.mapped} tensors mapped"]
        if self.unmapped:
            parts.append(f"{len(self.unmapped)} unmapped: {_preview(self.unmapped)}")
        if self.missing:
            parts.append(f"{len(self.missing)} missing: {_preview(self.missing)}")
        return "; ".join(parts)


def _preview(keys: list[str], n: int = 8) -> str:
    head = ", ".join(keys[:n])
    return head + (f", … (+{len(keys) - n})" if len(keys) > n else "")


def official_to_ours(
    official: dict[str, torch.Tensor], num_llm_layers: int
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename (and split fused qkv) official keys; returns our state dict and the official keys left over.

    LLM layers at or beyond `num_llm_layers` are left over (the original keeps only the first 14).
    """
    ours: dict[str, torch.Tensor] = {}
    leftover: list[str] = []
    for key, value in official.items():
        if key.startswith("action_head."):
            ours[key] = value
        elif key.startswith(_VIT_OFF):
            rest = key[len(_VIT_OFF) :]
            if rest in _EMBED_RENAMES:
                ours[_VIT_OURS + _EMBED_RENAMES[rest]] = value
                continue
            match = _VIT_LAYER.match(rest)
            if match is None:
                leftover.append(key)
                continue
            index, name = match.groups()
            prefix = f"{_VIT_OURS}encoder.layer.{index}."
            if name in ("attn.qkv.weight", "attn.qkv.bias"):
                kind = name.rsplit(".", 1)[1]
                if value.shape[0] % 3:
                    raise ValueError(f"{key}: fused qkv has {value.shape[0]} rows, not a multiple of 3")
                q, k, v = value.chunk(3, dim=0)
                ours[f"{prefix}attention.q_proj.{kind}"] = q.clone()
                ours[f"{prefix}attention.k_proj.{kind}"] = k.clone()
                ours[f"{prefix}attention.v_proj.{kind}"] = v.clone()
            elif name in _LAYER_RENAMES:
                ours[prefix + _LAYER_RENAMES[name]] = value
            else:
                leftover.append(key)
        elif key.startswith(_MLP1_OFF):
            index, _, param = key[len(_MLP1_OFF) :].partition(".")
            if index in _MLP1_RENAMES and param in ("weight", "bias"):
                ours[f"{_PROJ_OURS}{_MLP1_RENAMES[index]}.{param}"] = value
            else:
                leftover.append(key)
        elif key.startswith(_LLM_OFF):
            rest = key[len(_LLM_OFF) :]
            match = _LLM_LAYER.match(rest)
            if match is not None and int(match.group(1)) >= num_llm_layers:
                leftover.append(key)
                continue
            ours[_LLM_OURS + rest] = value
        else:
            leftover.append(key)
    return ours, leftover


def ours_to_official(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse mapping: our state dict in the official layout (q, k, v fused back into `attn.qkv`)."""
    inv_embed = {v: k for k, v in _EMBED_RENAMES.items()}
    inv_layer = {v: k for k, v in _LAYER_RENAMES.items()}
    inv_mlp1 = {v: k for k, v in _MLP1_RENAMES.items()}
    official: dict[str, torch.Tensor] = {}
    for key, value in ours.items():
        if key.startswith("action_head."):
            official[key] = value
        elif key.startswith(_VIT_OURS):
            rest = key[len(_VIT_OURS) :]
            if rest in inv_embed:
                official[_VIT_OFF + inv_embed[rest]] = value
                continue
            match = _OUR_VIT_LAYER.match(rest)
            if match is None:
                raise KeyError(f"no official name for vision key {key}")
            index, name = match.groups()
            prefix = f"{_VIT_OFF}encoder.layers.{index}."
            if name.startswith("attention.") and name.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                proj, kind = name.split(".")[1:]
                if proj != "q_proj":
                    continue  # fused together with q below
                base = f"{_VIT_OURS}encoder.layer.{index}.attention."
                official[f"{prefix}attn.qkv.{kind}"] = torch.cat(
                    [ours[f"{base}q_proj.{kind}"], ours[f"{base}k_proj.{kind}"], ours[f"{base}v_proj.{kind}"]]
                )
            elif name in inv_layer:
                official[prefix + inv_layer[name]] = value
            else:
                raise KeyError(f"no official name for vision key {key}")
        elif key.startswith(_PROJ_OURS):
            module, _, param = key[len(_PROJ_OURS) :].partition(".")
            official[f"{_MLP1_OFF}{inv_mlp1[module]}.{param}"] = value
        elif key.startswith(_LLM_OURS):
            official[_LLM_OFF + key[len(_LLM_OURS) :]] = value
        else:
            raise KeyError(f"no official name for key {key}")
    return official

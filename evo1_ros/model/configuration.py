"""Evo-1 model configuration: every dimension of the released model in one JSON-serialisable dataclass.

`Evo1Config()` is the full-size model (InternVL3-1B backbone truncated to 14 LLM layers + the
122 M-parameter flow-matching head, ≈ 775 M parameters). `Evo1Config.tiny()` keeps the exact structure
(448² views, 256 image tokens per view, 1024-token prompt, horizon 50 × 24) at a few MB so that tests and
CPU demos can run it. See docs/evo1_model.md §2, §6.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ATTENTION_SEMANTICS = ("flash", "masked_head")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class Evo1Config:
    """All dimensions and run-time choices of Evo-1; defaults are the released full-size model."""

    # --- InternViT-300M-448px-V2.5 (vision tower) ---
    image_size: int = 448
    patch_size: int = 14
    vision_hidden_size: int = 1024
    vision_num_layers: int = 24
    vision_num_heads: int = 16
    vision_intermediate_size: int = 4096
    vision_layer_norm_eps: float = 1e-6
    vision_layer_scale_init: float = 0.1
    # --- projector (pixel shuffle + mlp1) ---
    downsample_ratio: float = 0.5
    # --- Qwen2.5-0.5B language model, truncated ---
    llm_hidden_size: int = 896
    vlm_num_layers: int = 14
    llm_num_heads: int = 14
    llm_num_kv_heads: int = 2
    llm_intermediate_size: int = 4864
    vocab_size: int = 151674
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    max_position_embeddings: int = 32768
    # --- prompt ---
    num_views: int = 3
    max_text_length: int = 1024
    img_start_token: str = "<img>"
    img_end_token: str = "</img>"
    img_context_token: str = "<IMG_CONTEXT>"
    img_context_token_id: int = 151667  # must match the tokenizer (checked when a policy is assembled)
    # --- flow-matching action head ---
    embed_dim: int = 896
    head_hidden_dim: int = 1024
    state_hidden_dim: int = 1024
    head_num_heads: int = 8
    head_num_layers: int = 8
    horizon: int = 50
    per_action_dim: int = 24
    state_dim: int = 24
    num_categories: int = 1
    dropout: float = 0.2
    time_table_size: int = 1000
    num_inference_steps: int = 32
    # --- run time ---
    attention_semantics: str = "flash"
    attn_implementation: str = "sdpa"
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def action_dim(self) -> int:
        """Flattened chunk size the head predicts at once (horizon × per_action_dim)."""
        return self.horizon * self.per_action_dim

    @property
    def patches_per_side(self) -> int:
        return self.image_size // self.patch_size

    @property
    def image_tokens_per_view(self) -> int:
        """Tokens one 448² view contributes after pixel shuffle (256 for InternVL3)."""
        return int(self.patches_per_side**2 * self.downsample_ratio**2)

    @property
    def projector_in_dim(self) -> int:
        return self.vision_hidden_size * int(round(1 / self.downsample_ratio)) ** 2

    # ------------------------------------------------------------------ presets
    @classmethod
    def tiny(cls, **overrides: Any) -> Evo1Config:
        """Same structure as the full model at a few MB (the dimensions of fixture evo1_reference_A)."""
        values: dict[str, Any] = dict(
            vision_hidden_size=64,
            vision_num_layers=2,
            vision_num_heads=4,
            vision_intermediate_size=128,
            llm_hidden_size=64,
            vlm_num_layers=2,
            llm_num_heads=4,
            llm_num_kv_heads=2,
            llm_intermediate_size=128,
            vocab_size=311,
            img_context_token_id=310,
            embed_dim=64,
            head_hidden_dim=128,
            state_hidden_dim=128,
            head_num_heads=4,
            head_num_layers=2,
            dropout=0.0,
        )
        values.update(overrides)
        return cls(**values)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Reject inconsistent dimensions early, with the field to fix in the message."""
        errors: list[str] = []
        if self.attention_semantics not in ATTENTION_SEMANTICS:
            errors.append(
                f"attention_semantics={self.attention_semantics!r}; use one of {ATTENTION_SEMANTICS}"
            )
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            errors.append(
                f"attn_implementation={self.attn_implementation!r}; use one of {ATTN_IMPLEMENTATIONS}"
            )
        if self.dtype not in DTYPES:
            errors.append(f"dtype={self.dtype!r}; use one of {DTYPES}")
        if self.image_size % self.patch_size:
            errors.append(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        scale = 1 / self.downsample_ratio if self.downsample_ratio > 0 else 0
        if not (scale >= 1 and abs(scale - round(scale)) < 1e-9) or self.patches_per_side % round(scale):
            errors.append(
                f"downsample_ratio {self.downsample_ratio} must be 1/k with k dividing "
                f"image_size/patch_size = {self.patches_per_side}"
            )
        for dim, heads, name in (
            (self.vision_hidden_size, self.vision_num_heads, "vision_hidden_size/vision_num_heads"),
            (self.llm_hidden_size, self.llm_num_heads, "llm_hidden_size/llm_num_heads"),
            (self.embed_dim, self.head_num_heads, "embed_dim/head_num_heads"),
        ):
            if heads <= 0 or dim % heads:
                errors.append(f"{name}: {dim} is not divisible by {heads}")
        if self.llm_num_kv_heads <= 0 or self.llm_num_heads % self.llm_num_kv_heads:
            errors.append(
                f"llm_num_heads {self.llm_num_heads} must be a multiple of llm_num_kv_heads {self.llm_num_kv_heads}"
            )
        if self.embed_dim != self.llm_hidden_size:
            errors.append(
                f"embed_dim {self.embed_dim} must equal llm_hidden_size {self.llm_hidden_size} "
                "(the head cross-attends to the LLM's hidden states)"
            )
        if self.num_categories != 1:
            errors.append(
                f"num_categories={self.num_categories}: only 1 is supported (all released checkpoints use 1)"
            )
        positive = (
            "vision_num_layers",
            "vlm_num_layers",
            "vocab_size",
            "num_views",
            "horizon",
            "per_action_dim",
            "state_dim",
            "head_num_layers",
            "num_inference_steps",
            "time_table_size",
            "max_text_length",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                errors.append(f"{name} must be > 0 (got {getattr(self, name)})")
        if self.horizon < 2:
            errors.append("horizon must be >= 2 (the horizon-1 projection of the original is not supported)")
        if not 0.0 <= self.dropout < 1.0:
            errors.append(f"dropout must be in [0, 1) (got {self.dropout})")
        if not 0 <= self.img_context_token_id < self.vocab_size:
            errors.append(
                f"img_context_token_id {self.img_context_token_id} must be inside the vocabulary "
                f"(vocab_size {self.vocab_size})"
            )
        min_len = self.num_views * (self.image_tokens_per_view + 8)
        if self.max_text_length < min_len:
            errors.append(f"max_text_length {self.max_text_length} cannot hold {self.num_views} views")
        if errors:
            raise ValueError("invalid Evo1Config: " + "; ".join(errors))

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evo1Config:
        """Build from a dict; unknown keys are an error so typos do not silently fall back to defaults."""
        if not isinstance(data, dict):
            raise TypeError(f"Evo1Config.from_dict expects a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Evo1Config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Evo1Config:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Evo1Config JSON is malformed: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Evo1Config:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Evo1Config file not found: {path}")
        return cls.from_json(path.read_text(encoding="utf-8"))

    def replace(self, **changes: Any) -> Evo1Config:
        """Copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


def torch_dtype(name: str) -> Any:
    """Map a config dtype name ("float32", "bfloat16", "float16") to the torch dtype."""
    import torch

    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in table:
        raise ValueError(f"unknown dtype {name!r}; use one of {tuple(table)}")
    return table[name]

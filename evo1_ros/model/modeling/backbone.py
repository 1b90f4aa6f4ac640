"""The Evo-1 vision-language backbone: InternVL3 built from transformers' native classes (no remote code).

InternViT → pixel shuffle → projector → Qwen2 LLM with only the first `vlm_num_layers` decoder layers
and its final RMSNorm (no LM head). The `<IMG_CONTEXT>` token embeddings are overwritten, in order, by
the 256 image features of each view, and the full final sequence [B, 1024, D] is returned — the action
head reads all of it. docs/evo1_model.md §2, §5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import InternVLConfig, InternVLModel, InternVLVisionConfig, Qwen2Config

from ..configuration import Evo1Config
from .masked_rows import MaskedQueryRows


def internvl_config(config: Evo1Config, image_token_id: int = 0) -> InternVLConfig:
    """The transformers InternVL configuration equivalent to the remote-code InternVL3 used by Evo-1."""
    vision = InternVLVisionConfig(
        hidden_size=config.vision_hidden_size,
        num_hidden_layers=config.vision_num_layers,
        num_attention_heads=config.vision_num_heads,
        intermediate_size=config.vision_intermediate_size,
        attention_bias=True,  # InternViT's fused qkv has a bias
        use_qk_norm=False,
        hidden_act="gelu",
        norm_type="layer_norm",
        layer_norm_eps=config.vision_layer_norm_eps,
        layer_scale_init_value=config.vision_layer_scale_init,
        image_size=config.image_size,
        patch_size=config.patch_size,
        use_mean_pooling=True,  # False would add a final LayerNorm that InternViT does not have (§11)
    )
    text = Qwen2Config(
        vocab_size=config.vocab_size,
        hidden_size=config.llm_hidden_size,
        intermediate_size=config.llm_intermediate_size,
        num_hidden_layers=config.vlm_num_layers,
        num_attention_heads=config.llm_num_heads,
        num_key_value_heads=config.llm_num_kv_heads,
        hidden_act="silu",
        rms_norm_eps=config.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        max_position_embeddings=config.max_position_embeddings,
        use_sliding_window=False,
        use_cache=False,
        tie_word_embeddings=False,
    )
    result = InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=image_token_id,
        image_seq_length=config.image_tokens_per_view,
        downsample_ratio=config.downsample_ratio,
        projector_hidden_act="gelu",
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )
    result._attn_implementation = config.attn_implementation
    return result


@dataclass
class BackboneOutput:
    """What one backbone pass produces; `fused_tokens` is what the action head attends to."""

    fused_tokens: torch.Tensor  # [B, L, D] final RMSNorm output, every position
    attention_mask: torch.Tensor  # [B, L] 1 = attended (after absent-view masking)
    vit_embeds: torch.Tensor  # [B, V, 256, D] projector output per view
    inputs_embeds: torch.Tensor  # [B, L, D] LLM input after the image-token replacement


class InternVL3Embedder(nn.Module):
    """InternVL3 truncated as Evo-1 truncates it; parameters live under `.model` like the original's."""

    def __init__(self, config: Evo1Config) -> None:
        super().__init__()
        self.config = config
        self.img_context_token_id = config.img_context_token_id
        self.model = InternVLModel(internvl_config(config, config.img_context_token_id))
        self._masked_rows = MaskedQueryRows(self.model.language_model)

    def set_attn_implementation(self, name: str) -> None:
        """Switch the attention backend of the ViT and the LLM (e.g. eager for the naive benchmark)."""
        self.model.config._attn_implementation = name
        self.model.vision_tower.config._attn_implementation = name
        self.model.language_model.config._attn_implementation = name

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[N, 3, 448, 448] normalised pixels → [N, 256, D] projected features (ViT last layer, no CLS)."""
        out = self.model.get_image_features(
            pixel_values=pixel_values,
            vision_feature_layer=-1,
            vision_feature_select_strategy="default",
            return_dict=True,
        )
        return out.pooler_output

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        flash_semantics: bool | None = None,
    ) -> BackboneOutput:
        """Run ViT + LLM once. pixel_values [B, V, 3, H, W]; input_ids / attention_mask [B, L].

        `flash_semantics` (default: config.attention_semantics == "flash") zeroes the attention output of
        masked query rows so every backend matches flash-attn-2 (see masked_rows.py).
        """
        if pixel_values.dim() != 5:
            raise ValueError(f"pixel_values must be [B, V, 3, H, W], got shape {tuple(pixel_values.shape)}")
        batch, views = pixel_values.shape[:2]
        if input_ids.shape != attention_mask.shape or input_ids.shape[0] != batch:
            raise ValueError(
                f"input_ids {tuple(input_ids.shape)} and attention_mask {tuple(attention_mask.shape)} "
                f"must both be [B={batch}, L]"
            )
        per_view = self.config.image_tokens_per_view
        context = input_ids == self.img_context_token_id
        counts = context.sum(dim=1)
        if bool((counts != views * per_view).any()):
            raise ValueError(
                f"each prompt must hold exactly {views}×{per_view} <IMG_CONTEXT> tokens (id "
                f"{self.img_context_token_id}); found {counts.tolist()} — was the prompt truncated or built "
                "with another tokenizer?"
            )
        llm = self.model.language_model
        feats = self.image_features(pixel_values.flatten(0, 1))  # [B*V, 256, D]
        embeds = llm.embed_tokens(input_ids)
        embeds = embeds.masked_scatter(context.unsqueeze(-1), feats.to(embeds.dtype))
        if flash_semantics is None:
            flash_semantics = self.config.attention_semantics == "flash"
        with self._masked_rows.active(attention_mask if flash_semantics else None):
            out = llm(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False)
        return BackboneOutput(
            fused_tokens=out.last_hidden_state,
            attention_mask=attention_mask,
            vit_embeds=feats.view(batch, views, per_view, -1),
            inputs_embeds=embeds,
        )

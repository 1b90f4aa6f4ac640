"""The Evo-1 multimodal prompt: `Image-k: <img>` + 256×`<IMG_CONTEXT>` + `</img>\\n` per view + instruction.

No chat template or system prompt; tokenised with right padding to exactly `max_text_length` (1024).
Only an absent view's `<IMG_CONTEXT>` positions are masked — its `Image-k`, `<img>`, `</img>` and newline
tokens stay attended (docs/evo1_model.md §4).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch

from ..configuration import Evo1Config


def build_prompt(instruction: str, config: Evo1Config) -> str:
    """The full prompt string for `config.num_views` views (always all of them, present or not)."""
    if not isinstance(instruction, str):
        raise TypeError(f"task must be a str, got {type(instruction).__name__}")
    context = config.img_context_token * config.image_tokens_per_view
    views = "".join(
        f"Image-{k}: {config.img_start_token}{context}{config.img_end_token}\n"
        for k in range(1, config.num_views + 1)
    )
    return views + instruction.strip()


class PromptTokenizer:
    """Tokenises prompts to fixed-length ids + attention masks, caching per instruction."""

    def __init__(self, tokenizer: Any, config: Evo1Config, cache_size: int = 64) -> None:
        self.tokenizer = tokenizer
        self.config = config
        context_id = tokenizer.convert_tokens_to_ids(config.img_context_token)
        unk = getattr(tokenizer, "unk_token_id", None)
        if context_id is None or (unk is not None and context_id == unk):
            raise ValueError(
                f"tokenizer has no {config.img_context_token!r} token; load the InternVL3 tokenizer "
                "(or one with <img>, </img>, <IMG_CONTEXT> added as special tokens)"
            )
        if context_id != config.img_context_token_id:
            raise ValueError(
                f"tokenizer maps {config.img_context_token} to id {context_id} but the model config expects "
                f"img_context_token_id={config.img_context_token_id}; use the tokenizer saved with the checkpoint"
            )
        if tokenizer.pad_token_id is None:
            raise ValueError(
                "tokenizer has no pad token; InternVL3's Qwen2 tokenizer pads with <|endoftext|>"
            )
        self.context_id = context_id
        self._encode = lru_cache(maxsize=cache_size)(self._encode_uncached)

    def _encode_uncached(self, instruction: str) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        text = build_prompt(instruction, cfg)
        length = len(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        if length > cfg.max_text_length:
            warnings.warn(
                f"prompt is {length} tokens; the instruction is truncated to fit {cfg.max_text_length}",
                stacklevel=3,
            )
        enc = self.tokenizer(
            text,
            padding="max_length",
            truncation=True,
            max_length=cfg.max_text_length,
            return_tensors="pt",
        )
        ids = enc["input_ids"][0]
        mask = enc["attention_mask"][0]
        expected = cfg.num_views * cfg.image_tokens_per_view
        found = int((ids == self.context_id).sum())
        if found != expected:
            raise ValueError(
                f"tokenised prompt holds {found} {cfg.img_context_token} tokens, expected {expected}; "
                "the tokenizer must treat it as one special token"
            )
        return ids, mask

    def encode(
        self, instructions: Sequence[str], image_masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch of instructions + [B, V] view masks → input_ids, attention_mask [B, max_text_length]."""
        if len(instructions) != image_masks.shape[0]:
            raise ValueError(f"{len(instructions)} tasks for {image_masks.shape[0]} image masks")
        ids, masks = [], []
        for instruction, view_mask in zip(instructions, image_masks, strict=True):
            i, m = self._encode(instruction.strip() if isinstance(instruction, str) else instruction)
            ids.append(i)
            masks.append(
                mask_absent_views(i, m, view_mask, self.context_id, self.config.image_tokens_per_view)
            )
        return torch.stack(ids), torch.stack(masks)


def mask_absent_views(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    view_mask: torch.Tensor,
    context_id: int,
    tokens_per_view: int,
) -> torch.Tensor:
    """Zero the attention mask on the `<IMG_CONTEXT>` positions of each absent view (view order)."""
    positions = torch.nonzero(input_ids == context_id).flatten()
    views = view_mask.numel()
    if positions.numel() != views * tokens_per_view:
        raise ValueError(f"expected {views * tokens_per_view} image tokens, found {positions.numel()}")
    out = attention_mask.clone()
    for v in range(views):
        if not bool(view_mask[v]):
            out[positions[v * tokens_per_view : (v + 1) * tokens_per_view]] = 0
    return out

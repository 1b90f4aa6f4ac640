"""Flash-attention-2 semantics on any attention backend: masked query rows get a zero attention output.

The released Evo-1 weights were trained with flash-attn, whose varlen path drops masked positions
(right padding, absent-view image tokens) before attention and re-pads the output with zeros. With
eager/SDPA those positions would instead attend to earlier tokens and give different hidden states, which
the action head then reads (it attends to all 1024 positions). We reproduce the flash behaviour on every
backend by zeroing the input of each layer's `o_proj` at masked query rows (o_proj has no bias, so the
attention contribution is exactly 0). Masked keys are already invisible through the attention mask.
See docs/evo1_model.md §5.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class MaskedQueryRows:
    """Installs forward-pre-hooks on `self_attn.o_proj` of every decoder layer of a Qwen2 model."""

    def __init__(self, language_model: nn.Module) -> None:
        layers = getattr(language_model, "layers", None)
        if layers is None:
            raise TypeError("MaskedQueryRows needs a decoder model with a `.layers` ModuleList")
        self._keep: torch.Tensor | None = None
        self._handles = [layer.self_attn.o_proj.register_forward_pre_hook(self._hook) for layer in layers]

    def _hook(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
        if self._keep is None:
            return None
        (hidden,) = args
        keep = self._keep.to(device=hidden.device)
        if keep.shape != hidden.shape[:2]:
            raise RuntimeError(
                f"masked-row mask {tuple(keep.shape)} does not match attention output {tuple(hidden.shape[:2])}"
            )
        # torch.where (not a multiply) so that a NaN from a fully masked row cannot leak through.
        return (
            torch.where(
                keep.unsqueeze(-1), hidden, torch.zeros((), dtype=hidden.dtype, device=hidden.device)
            ),
        )

    @contextmanager
    def active(self, attention_mask: torch.Tensor | None) -> Iterator[None]:
        """Zero masked query rows for the duration of one LLM call (`attention_mask` 1 = keep)."""
        self._keep = None if attention_mask is None else attention_mask.bool()
        try:
            yield
        finally:
            self._keep = None

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

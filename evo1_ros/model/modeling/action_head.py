"""Evo-1's flow-matching action head (`FlowmatchingActionHead`, docs/evo1_model.md §6).

Context = [fused backbone tokens (all 1024) ; state token] → cross-attention-only transformer over the
50 action tokens → LayerNorm → flatten-and-project pooling → MLP → the whole chunk's velocity (50×24).
The context never changes during one chunk, so its keys/values are projected once (`encode_context`)
and each Euler step only runs the query side (`predict_velocity`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..configuration import Evo1Config
from .head_layers import (
    BasicTransformerBlock,
    CategorySpecificMLP,
    MultiEmbodimentActionEncoder,
    SinusoidalPositionalEncoding,
)


@dataclass
class HeadContext:
    """Per-chunk context: tokens, optional key mask, and (when cached) each block's keys/values."""

    tokens: torch.Tensor  # [B, L + 1, E]
    key_padding_mask: torch.Tensor | None  # [B, L + 1] True = attend, None = attend to all
    keys_values: list[tuple[torch.Tensor, torch.Tensor]] | None


class FlowmatchingActionHead(nn.Module):
    """Predicts the velocity of the whole normalised action chunk at one flow time."""

    def __init__(self, config: Evo1Config) -> None:
        super().__init__()
        e = config.embed_dim
        self.config = config
        self.horizon = config.horizon
        self.per_action_dim = config.per_action_dim
        self.time_pos_enc = SinusoidalPositionalEncoding(e, config.time_table_size)
        self.transformer_blocks = nn.ModuleList(
            [
                BasicTransformerBlock(e, config.head_num_heads, config.dropout)
                for _ in range(config.head_num_layers)
            ]
        )
        self.norm_out = nn.LayerNorm(e)
        self.seq_pool_proj = nn.Linear(config.horizon * e, e)
        self.mlp_head = CategorySpecificMLP(
            e, config.head_hidden_dim, config.action_dim, config.num_categories
        )
        self.state_encoder = CategorySpecificMLP(
            config.state_dim, config.state_hidden_dim, e, config.num_categories
        )
        self.action_encoder = MultiEmbodimentActionEncoder(
            config.per_action_dim, e, config.horizon, config.num_categories
        )

    @property
    def dtype(self) -> torch.dtype:
        return self.seq_pool_proj.weight.dtype

    def encode_context(
        self,
        fused_tokens: torch.Tensor,
        state: torch.Tensor,
        context_mask: torch.Tensor | None = None,
        cache_keys_values: bool = True,
    ) -> HeadContext:
        """Append the state token to the backbone tokens; optionally project every block's K/V once.

        context_mask [B, L] (1 = attend) is only given under `masked_head` semantics; the state token is
        always attended.
        """
        if state.dim() != 2 or state.shape[1] != self.config.state_dim:
            raise ValueError(f"state must be [B, {self.config.state_dim}], got {tuple(state.shape)}")
        if fused_tokens.dim() != 3 or fused_tokens.shape[0] != state.shape[0]:
            raise ValueError(
                f"fused_tokens must be [B={state.shape[0]}, L, {self.config.embed_dim}], "
                f"got {tuple(fused_tokens.shape)}"
            )
        dtype = self.dtype
        state_token = self.state_encoder(state.to(dtype)).unsqueeze(1)
        tokens = torch.cat([fused_tokens.to(dtype), state_token], dim=1)
        key_mask = None
        if context_mask is not None:
            ones = torch.ones(state.shape[0], 1, dtype=torch.bool, device=context_mask.device)
            key_mask = torch.cat([context_mask.bool(), ones], dim=1)
        kv = None
        if cache_keys_values:
            kv = [block.attn.project_context(tokens) for block in self.transformer_blocks]
        return HeadContext(tokens=tokens, key_padding_mask=key_mask, keys_values=kv)

    def time_embedding(self, time_index: torch.Tensor | int, batch: int) -> torch.Tensor:
        """Row `time_index` of the sinusoidal table, [B, E] (the time embedding is a lookup, no MLP)."""
        size = self.config.time_table_size
        if isinstance(time_index, int):
            if not 0 <= time_index < size:
                raise ValueError(f"time_index must be in [0, {size}), got {time_index}")
            return self.time_pos_enc.pe[0, time_index].unsqueeze(0).expand(batch, -1)
        return self.time_pos_enc.pe[0, time_index.reshape(-1).long()].expand(batch, -1)

    def predict_velocity(
        self, x_t: torch.Tensor, time_index: torch.Tensor | int, context: HeadContext
    ) -> torch.Tensor:
        """x_t [B, H·D] or [B, H, D] (normalised actions at flow time t) → velocity [B, H·D].

        time_index: one int for the whole batch (inference) or a [B] tensor (training).
        """
        batch = x_t.shape[0]
        actions = x_t.reshape(batch, self.horizon, self.per_action_dim).to(self.dtype)
        t_emb = self.time_embedding(time_index, batch).to(self.dtype)
        h = self.action_encoder(actions)
        for i, block in enumerate(self.transformer_blocks):
            kv = (
                context.keys_values[i]
                if context.keys_values is not None
                else block.attn.project_context(context.tokens)
            )
            h = block(h, kv, t_emb, context.key_padding_mask)
        h = self.norm_out(h)
        pooled = self.seq_pool_proj(h.reshape(batch, -1))
        return self.mlp_head(pooled)

    def forward(
        self,
        fused_tokens: torch.Tensor,
        state: torch.Tensor,
        x_t: torch.Tensor,
        time_index: torch.Tensor | int,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One-shot velocity prediction (training); inference uses encode_context + predict_velocity."""
        context = self.encode_context(fused_tokens, state, context_mask, cache_keys_values=False)
        return self.predict_velocity(x_t, time_index, context)

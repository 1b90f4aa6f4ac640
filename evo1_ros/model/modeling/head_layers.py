"""Building blocks of the Evo-1 flow-matching action head, named exactly like the official modules.

Names and parameter layouts follow docs/evo1_model.md §6 and docs/evo1_checkpoints.md §4 so that official state dicts load
without renaming (`time_pos_enc.pe`, `transformer_blocks.N.attn.in_proj_weight`, `ff.0`, `ff.2`,
`mlp_head.fc1.linear`, `action_encoder.W1.linear`, ...).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """[1, length, dim] table: pe[p, 2i] = sin(p·10000^(−2i/dim)), pe[p, 2i+1] = cos(...)."""
    if dim % 2:
        raise ValueError(f"sinusoidal encoding needs an even dimension, got {dim}")
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, dtype=torch.float32)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table.unsqueeze(0)


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sinusoidal table kept as a persistent buffer `pe` (checkpoints store it)."""

    def __init__(self, dim: int, max_len: int) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(max_len, dim), persistent=True)

    def forward(self, length: int) -> torch.Tensor:
        """The first `length` rows, [1, length, dim]."""
        return self.pe[:, :length]


class CategorySpecificLinear(nn.Module):
    """With one category (every released checkpoint) this is a plain Linear stored as `.linear`."""

    def __init__(self, in_dim: int, out_dim: int, num_categories: int = 1) -> None:
        super().__init__()
        if num_categories != 1:
            raise ValueError("only num_categories=1 is supported (released checkpoints use 1)")
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class CategorySpecificMLP(nn.Module):
    """fc1 → ReLU → fc2 (used for the state encoder and the velocity head)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_categories: int = 1) -> None:
        super().__init__()
        self.fc1 = CategorySpecificLinear(in_dim, hidden_dim, num_categories)
        self.fc2 = CategorySpecificLinear(hidden_dim, out_dim, num_categories)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class MultiEmbodimentActionEncoder(nn.Module):
    """Per-step action embedding: W1 → ReLU → + position table over the horizon → W2 → ReLU → W3."""

    def __init__(self, action_dim: int, embed_dim: int, horizon: int, num_categories: int = 1) -> None:
        super().__init__()
        self.W1 = CategorySpecificLinear(action_dim, embed_dim, num_categories)
        self.W2 = CategorySpecificLinear(embed_dim, embed_dim, num_categories)
        self.W3 = CategorySpecificLinear(embed_dim, embed_dim, num_categories)
        self.pos_encoding = SinusoidalPositionalEncoding(embed_dim, horizon)

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        """[B, H, action_dim] → [B, H, embed_dim]."""
        h = F.relu(self.W1(actions))
        h = h + self.pos_encoding(actions.shape[1]).to(h.dtype)
        h = F.relu(self.W2(h))
        return self.W3(h)


class CrossAttention(nn.Module):
    """Multi-head cross-attention with nn.MultiheadAttention's parameter layout.

    Unlike nn.MultiheadAttention it can project the (fixed) context once per action chunk and reuse
    the keys/values for every Euler step — only the query side runs per step.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def project_context(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the context, [B, heads, Lk, head_dim] each."""
        e = self.embed_dim
        k = F.linear(context, self.in_proj_weight[e : 2 * e], self.in_proj_bias[e : 2 * e])
        v = F.linear(context, self.in_proj_weight[2 * e :], self.in_proj_bias[2 * e :])
        return self._split_heads(k), self._split_heads(v)

    def forward(
        self,
        query: torch.Tensor,
        keys_values: tuple[torch.Tensor, torch.Tensor],
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """query [B, Lq, E]; key_padding_mask [B, Lk] with True = attend (None: attend to every key)."""
        e = self.embed_dim
        q = self._split_heads(F.linear(query, self.in_proj_weight[:e], self.in_proj_bias[:e]))
        k, v = keys_values
        mask = None
        if key_padding_mask is not None:
            mask = key_padding_mask.bool()[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        batch, _, length, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, e))


class BasicTransformerBlock(nn.Module):
    """Cross-attention-only block: x = a + Attn(LN1(a), ctx); x = x + FFN(LN2(x) + t_emb).

    No self-attention among action tokens and no adaLN: the only time conditioning is the additive time
    embedding on the FFN input; the context is not normalised (§2.1).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attn = CrossAttention(embed_dim, num_heads, dropout)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.ff = nn.Sequential(
            nn.Linear(embed_dim, 4 * embed_dim), nn.GELU(), nn.Linear(4 * embed_dim, embed_dim)
        )

    def forward(
        self,
        x: torch.Tensor,
        keys_values: tuple[torch.Tensor, torch.Tensor],
        time_embedding: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x [B, H, E]; time_embedding [B, E]."""
        x = x + self.attn(self.norm1(x), keys_values, key_padding_mask)
        return x + self.ff(self.norm2(x) + time_embedding.unsqueeze(1))

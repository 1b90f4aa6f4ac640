"""Independent reference implementations, written in the tests from the facts in docs/evo1_model.md.

They read weights in the *official* (remote-code InternVL) layout, so comparing them with our imported
modules checks the key mapping (fused qkv split order, layer scale, mlp1 indices) and the layer maths.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def internvit_block(sd: dict[str, torch.Tensor], prefix: str, x: torch.Tensor, heads: int) -> torch.Tensor:
    """InternViT layer: x + ls1·Attn(LN1(x)); then + ls2·MLP(LN2(x)). Fused qkv rows = [q; k; v]. x [B, N, C]."""
    b, n, c = x.shape
    d = c // heads
    h = F.layer_norm(x, (c,), sd[prefix + "norm1.weight"], sd[prefix + "norm1.bias"], eps=1e-6)
    qkv = h @ sd[prefix + "attn.qkv.weight"].T + sd[prefix + "attn.qkv.bias"]
    qkv = qkv.view(b, n, 3, heads, d).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    attn = (weights @ v).transpose(1, 2).reshape(b, n, c)
    attn = attn @ sd[prefix + "attn.proj.weight"].T + sd[prefix + "attn.proj.bias"]
    x = x + sd[prefix + "ls1"] * attn
    h = F.layer_norm(x, (c,), sd[prefix + "norm2.weight"], sd[prefix + "norm2.bias"], eps=1e-6)
    h = F.gelu(h @ sd[prefix + "mlp.fc1.weight"].T + sd[prefix + "mlp.fc1.bias"])
    h = h @ sd[prefix + "mlp.fc2.weight"].T + sd[prefix + "mlp.fc2.bias"]
    return x + sd[prefix + "ls2"] * h


def mlp1(sd: dict[str, torch.Tensor], prefix: str, x: torch.Tensor) -> torch.Tensor:
    """Projector `mlp1` = Sequential(LayerNorm, Linear, GELU, Linear) → indices 0, 1, 3."""
    h = F.layer_norm(x, (x.shape[-1],), sd[prefix + "0.weight"], sd[prefix + "0.bias"], eps=1e-5)
    h = F.gelu(h @ sd[prefix + "1.weight"].T + sd[prefix + "1.bias"])
    return h @ sd[prefix + "3.weight"].T + sd[prefix + "3.bias"]


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotary embedding on x [L, heads, d] at positions 0..L−1 (halves rotated: [x1, x2] → [−x2, x1])."""
    length, _, d = x.shape
    inv = theta ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    angles = torch.arange(length, dtype=torch.float32)[:, None] * inv[None]
    cos = torch.cat([angles.cos(), angles.cos()], -1)[:, None, :]
    sin = torch.cat([angles.sin(), angles.sin()], -1)[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def qwen2_layer_rows(
    sd: dict[str, torch.Tensor],
    prefix: str,
    h: torch.Tensor,
    keep: torch.Tensor,
    heads: int,
    kv_heads: int,
    theta: float,
    flash: bool,
) -> torch.Tensor:
    """One Qwen2 decoder layer on one sequence h [L, C], attention with an explicit per-row visibility.

    Row i attends to keys j ≤ i with keep[j]; with `flash`, a row with keep[i] = 0 gets a zero attention
    output (flash-attention-2 un-pad/re-pad semantics).
    """
    length, c = h.shape
    d = c // heads
    x = rms_norm(h, sd[prefix + "input_layernorm.weight"])
    q = (x @ sd[prefix + "self_attn.q_proj.weight"].T + sd[prefix + "self_attn.q_proj.bias"]).view(
        length, heads, d
    )
    k = (x @ sd[prefix + "self_attn.k_proj.weight"].T + sd[prefix + "self_attn.k_proj.bias"]).view(
        length, kv_heads, d
    )
    v = (x @ sd[prefix + "self_attn.v_proj.weight"].T + sd[prefix + "self_attn.v_proj.bias"]).view(
        length, kv_heads, d
    )
    q, k = rope(q, theta), rope(k, theta)
    group = heads // kv_heads
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    # visible[i, j]: row i may read key j (causal and not masked) — spelled out row by row
    positions = torch.arange(length)
    visible = (positions[None, :] <= positions[:, None]) & keep[None, :]
    scores = torch.einsum("ihd,jhd->hij", q, k) / math.sqrt(d)
    scores = scores.masked_fill(~visible[None], float("-inf"))
    out = torch.einsum("hij,jhd->ihd", torch.softmax(scores, dim=-1), v)
    if flash:
        out[~keep] = 0.0  # a masked query row produces no attention output at all
    h = h + out.reshape(length, c) @ sd[prefix + "self_attn.o_proj.weight"].T
    x = rms_norm(h, sd[prefix + "post_attention_layernorm.weight"])
    gate = F.silu(x @ sd[prefix + "mlp.gate_proj.weight"].T)
    up = x @ sd[prefix + "mlp.up_proj.weight"].T
    return h + (gate * up) @ sd[prefix + "mlp.down_proj.weight"].T

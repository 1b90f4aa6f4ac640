"""Euler sampling of the action head replayed from a captured CUDA graph.

On a GPU the head's per-step work is small (50 query tokens), so 32 Euler steps × ~100 kernel launches
are bound by Python/launch overhead rather than arithmetic. Capturing the whole head part of a chunk
(state token, cached context keys/values, all Euler steps) once per (batch, length, steps) and replaying
it removes that overhead. The maths is exactly `Evo1Model.sample_actions` (same modules, same order).
"""

from __future__ import annotations

import torch

from . import flow_matching as fm
from .evo1 import Evo1Model, expand_action_mask


class CudaGraphHeadSampler:
    """Captured `sample_actions` for one batch size, context length and step count (CUDA only)."""

    def __init__(self, model: Evo1Model, batch: int, context_length: int, num_steps: int) -> None:
        device = model.action_head.seq_pool_proj.weight.device
        if device.type != "cuda":
            raise RuntimeError(f"CUDA graphs need the model on a CUDA device (it is on {device})")
        if num_steps <= 0:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps}")
        cfg = model.config
        self.model = model
        self.batch = batch
        self.context_length = context_length
        self.num_steps = num_steps
        dtype = model.action_head.dtype
        self._fused = torch.zeros(batch, context_length, cfg.embed_dim, device=device, dtype=dtype)
        self._state = torch.zeros(batch, cfg.state_dim, device=device, dtype=dtype)
        self._mask = torch.zeros(batch, cfg.action_dim, device=device, dtype=dtype)
        self._x0 = torch.zeros(batch, cfg.action_dim, device=device, dtype=dtype)
        self._masked_head = cfg.attention_semantics == "masked_head"
        self._context_mask = torch.ones(batch, context_length, device=device, dtype=torch.bool)
        self._indices = [fm.time_index_for_step(i, num_steps, cfg.time_table_size) for i in range(num_steps)]

        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(2):  # warm-up outside the graph (cuBLAS/SDPA workspace allocation)
                self._run()
        torch.cuda.current_stream(device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self._graph):
            self._out = self._run()

    def _run(self) -> torch.Tensor:
        head = self.model.action_head
        context_mask = self._context_mask if self._masked_head else None
        context = head.encode_context(self._fused, self._state, context_mask, cache_keys_values=True)
        dt = 1.0 / self.num_steps
        x = self._x0
        for index in self._indices:
            x = x + dt * head.predict_velocity(x * self._mask, index, context)
        return x

    def matches(self, batch: int, context_length: int, num_steps: int) -> bool:
        return (batch, context_length, num_steps) == (self.batch, self.context_length, self.num_steps)

    def __call__(
        self,
        fused_tokens: torch.Tensor,
        state: torch.Tensor,
        action_mask: torch.Tensor,
        x0: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final unmasked normalised chunk [B, H·D], like `Evo1Model.sample_actions(...).actions`.

        context_mask is required under `masked_head` semantics and ignored under `flash`.
        """
        cfg = self.model.config
        if fused_tokens.shape[:2] != (self.batch, self.context_length):
            raise ValueError(
                f"captured for fused tokens [{self.batch}, {self.context_length}, ...], "
                f"got {tuple(fused_tokens.shape)}"
            )
        mask = expand_action_mask(action_mask, self.batch, cfg.horizon, cfg.per_action_dim)
        with torch.no_grad():
            self._fused.copy_(fused_tokens)
            self._state.copy_(state)
            self._mask.copy_(mask.reshape(self.batch, -1))
            self._x0.copy_(x0.reshape(self.batch, -1))
            if self._masked_head:
                if context_mask is None:
                    raise ValueError(
                        "masked_head semantics: pass the backbone attention mask as context_mask"
                    )
                self._context_mask.copy_(context_mask.bool())
            self._graph.replay()
            return self._out.clone()

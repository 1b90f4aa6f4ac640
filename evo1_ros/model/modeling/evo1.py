"""The Evo-1 network: InternVL3 embedder + flow-matching action head, with training and sampling.

The module hierarchy (`embedder.model.*`, `action_head.*`) mirrors the original `EVO1` module so that
checkpoint keys stay recognisable. The backbone runs once per action chunk; only the head runs per
Euler step (docs/evo1_model.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..configuration import Evo1Config
from . import flow_matching as fm
from .action_head import FlowmatchingActionHead, HeadContext
from .backbone import BackboneOutput, InternVL3Embedder


@dataclass
class FlowMatchingOutput:
    """Result of the training forward; `loss` is the masked MSE to the velocity target a − ε."""

    loss: torch.Tensor
    pred_velocity: torch.Tensor  # [B, H·D]
    target: torch.Tensor  # [B, H·D]
    noise: torch.Tensor  # [B, H, D] (masked)
    t: torch.Tensor  # [B]


@dataclass
class SampleOutput:
    """Result of Euler sampling: the final normalised chunk (unmasked, as `main` returns it)."""

    actions: torch.Tensor  # [B, H·D]
    velocities: list[torch.Tensor]


def expand_action_mask(
    action_mask: torch.Tensor, batch: int, horizon: int, per_action_dim: int
) -> torch.Tensor:
    """Accept [D], [B, D], [B, H·D] or [B, H, D] masks and return float [B, H, D]."""
    m = action_mask
    if m.dim() == 1 and m.shape[0] == per_action_dim:
        m = m.view(1, 1, per_action_dim).expand(batch, horizon, per_action_dim)
    elif m.dim() == 2 and m.shape == (batch, per_action_dim):
        m = m.view(batch, 1, per_action_dim).expand(batch, horizon, per_action_dim)
    elif m.dim() == 2 and m.shape == (batch, horizon * per_action_dim):
        m = m.view(batch, horizon, per_action_dim)
    elif m.dim() == 3 and m.shape == (batch, horizon, per_action_dim):
        pass
    else:
        raise ValueError(
            f"action_mask shape {tuple(action_mask.shape)} not understood; use [{per_action_dim}], "
            f"[B, {per_action_dim}], [B, {horizon * per_action_dim}] or [B, {horizon}, {per_action_dim}]"
        )
    return m.float()


class Evo1Model(nn.Module):
    """Evo-1 (≈ 775 M parameters at full size). Inputs are already tokenised / normalised tensors."""

    def __init__(self, config: Evo1Config) -> None:
        super().__init__()
        self.config = config
        self.embedder = InternVL3Embedder(config)
        self.action_head = FlowmatchingActionHead(config)

    # ------------------------------------------------------------------ backbone
    def embed(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> BackboneOutput:
        """One backbone pass (ViT + truncated LLM) under the configured attention semantics."""
        return self.embedder(pixel_values, input_ids, attention_mask)

    def head_context_mask(self, backbone: BackboneOutput) -> torch.Tensor | None:
        """`flash`: the head sees all positions (None); `masked_head`: the LLM padding mask."""
        if self.config.attention_semantics == "masked_head":
            return backbone.attention_mask
        return None

    # ------------------------------------------------------------------ training
    def flow_matching_loss(
        self,
        fused_tokens: torch.Tensor,
        state: torch.Tensor,
        actions: torch.Tensor,
        action_mask: torch.Tensor,
        context_mask: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> FlowMatchingOutput:
        """Head training forward: t ~ Beta(2,2)∈[0.02,0.98], ε ~ U(−1,1)·mask, x_t = (1−t)ε + t·a.

        actions [B, H, D] normalised to [−1, 1] and zero-padded; `t`/`noise` may be given to replay a draw.
        """
        cfg = self.config
        batch = actions.shape[0]
        if actions.shape[1:] != (cfg.horizon, cfg.per_action_dim):
            raise ValueError(
                f"actions must be [B, {cfg.horizon}, {cfg.per_action_dim}], got {tuple(actions.shape)}"
            )
        device = actions.device
        dtype = self.action_head.dtype
        mask = expand_action_mask(action_mask.to(device), batch, cfg.horizon, cfg.per_action_dim)
        if t is None:
            t = fm.sample_time(batch, generator, device="cpu" if generator is None else generator.device)
        t = t.reshape(batch).to(device=device, dtype=dtype)
        if noise is None:
            gen_device = "cpu" if generator is None else generator.device
            noise = fm.sample_noise(tuple(actions.shape), generator, device=gen_device)
        noise = noise.to(device=device, dtype=dtype) * mask.to(dtype)
        actions = actions.to(dtype)
        x_t = fm.interpolate(noise, actions, t)
        time_index = fm.time_index_from_t(t, cfg.time_table_size)
        pred = self.action_head(fused_tokens, state, x_t, time_index, context_mask)
        target = fm.velocity_target(noise, actions).reshape(batch, -1)
        flat_mask = mask.reshape(batch, -1).to(pred.dtype)
        loss = fm.masked_mse(pred.float(), target.float(), flat_mask.float())
        return FlowMatchingOutput(loss=loss, pred_velocity=pred, target=target, noise=noise, t=t)

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        state: torch.Tensor,
        actions: torch.Tensor,
        action_mask: torch.Tensor,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> FlowMatchingOutput:
        """Full training forward (backbone + flow-matching loss), what the training loop calls."""
        backbone = self.embed(pixel_values, input_ids, attention_mask)
        return self.flow_matching_loss(
            backbone.fused_tokens.float(),
            state,
            actions,
            action_mask,
            context_mask=self.head_context_mask(backbone),
            t=t,
            noise=noise,
            generator=generator,
        )

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def sample_actions(
        self,
        fused_tokens: torch.Tensor,
        state: torch.Tensor,
        action_mask: torch.Tensor,
        num_steps: int | None = None,
        x0: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        context_mask: torch.Tensor | None = None,
        cache_keys_values: bool = True,
    ) -> SampleOutput:
        """Euler-integrate the head's velocity from x0 ~ U(−1,1) to a normalised chunk.

        Returns the unmasked final state [B, H·D] like the original `main` (padded dims are meaningless).
        """
        cfg = self.config
        steps = cfg.num_inference_steps if num_steps is None else int(num_steps)
        if steps <= 0:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps}")
        batch = state.shape[0]
        device = state.device
        dtype = self.action_head.dtype
        mask = expand_action_mask(action_mask.to(device), batch, cfg.horizon, cfg.per_action_dim)
        mask = mask.reshape(batch, -1).to(dtype)
        if x0 is None:
            gen_device = "cpu" if generator is None else generator.device
            x0 = fm.sample_noise((batch, cfg.action_dim), generator, device=gen_device)
        x0 = x0.reshape(batch, cfg.action_dim).to(device=device, dtype=dtype)
        context: HeadContext = self.action_head.encode_context(
            fused_tokens, state, context_mask, cache_keys_values=cache_keys_values
        )

        def velocity(x: torch.Tensor, step: int) -> torch.Tensor:
            index = fm.time_index_for_step(step, steps, cfg.time_table_size)
            return self.action_head.predict_velocity(x, index, context)

        final, velocities = fm.euler_integrate(velocity, x0, steps, mask)
        return SampleOutput(actions=final, velocities=velocities)

    @torch.no_grad()
    def predict_chunk(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        state: torch.Tensor,
        action_mask: torch.Tensor,
        num_steps: int | None = None,
        x0: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> SampleOutput:
        """Backbone once, then Euler steps on the head: one normalised action chunk per sample."""
        backbone = self.embed(pixel_values, input_ids, attention_mask)
        return self.sample_actions(
            backbone.fused_tokens.float(),
            state,
            action_mask,
            num_steps=num_steps,
            x0=x0,
            generator=generator,
            context_mask=self.head_context_mask(backbone),
        )

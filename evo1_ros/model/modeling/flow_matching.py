"""Flow-matching math of Evo-1 (rectified flow, t = 0 noise → t = 1 data), docs/evo1_model.md §7.

Kept free of any network so the conventions (uniform [−1, 1] noise, Beta(2,2) time clamped to
[0.02, 0.98], the ×1000 time-table index, velocity target a − ε, Euler steps on the unmasked state) are
testable on their own.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

TIME_MIN = 0.02
TIME_MAX = 0.98


def sample_time(
    batch: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """t ~ Beta(2, 2) per sample, clamped to [0.02, 0.98] (float32, [B]).

    Beta(2, 2) is the median of three independent U(0, 1) draws, which lets an explicit generator make
    the draw reproducible (torch.distributions.Beta takes no generator).
    """
    u = torch.rand(batch, 3, generator=generator, device=device)
    return u.median(dim=1).values.clamp(TIME_MIN, TIME_MAX)


def sample_noise(
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform noise in [−1, 1] (Evo-1 does not use Gaussian noise)."""
    return torch.rand(shape, generator=generator, device=device, dtype=dtype) * 2 - 1


def time_index_from_t(t: torch.Tensor, table_size: int = 1000) -> torch.Tensor:
    """Training: index of the time table = floor(t·1000) (original `main` convention, not ×999)."""
    return (t * table_size).long().clamp(0, table_size - 1)


def time_index_for_step(step: int, num_steps: int, table_size: int = 1000) -> int:
    """Inference: t = i/N and index int(t·1000), computed in Python floats as the original does."""
    return min(int(step / num_steps * table_size), table_size - 1)


def interpolate(noise: torch.Tensor, actions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 − t)·ε + t·a, with t [B] broadcast over the remaining dimensions."""
    t = t.view(-1, *([1] * (actions.dim() - 1))).to(actions.dtype)
    return (1 - t) * noise + t * actions


def velocity_target(noise: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The constant velocity of the straight path from ε to a."""
    return actions - noise


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the active (mask = 1) elements only; pred/target/mask broadcastable."""
    mask = mask.to(pred.dtype).expand_as(pred)
    active = mask.sum()
    if float(active) == 0:
        raise ValueError("action_mask has no active element; at least one action dimension must be real")
    return (((pred - target) * mask) ** 2).sum() / active


def euler_integrate(
    velocity_fn: Callable[[torch.Tensor, int], torch.Tensor],
    x0: torch.Tensor,
    num_steps: int,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """x ← x + (1/N)·v(x·mask, i) for i = 0..N−1; returns the final (unmasked) x and every velocity.

    As in the original, the velocity is evaluated on the masked state but the update is applied to the
    unmasked one, so padded dimensions carry noise + drift that callers must ignore.
    """
    if num_steps <= 0:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps}")
    dt = 1.0 / num_steps
    x = x0
    velocities: list[torch.Tensor] = []
    for i in range(num_steps):
        x_in = x if mask is None else x * mask
        v = velocity_fn(x_in, i)
        velocities.append(v)
        x = x + dt * v
    return x, velocities

"""Helpers shared by the model tests (tiny random models, random images)."""

from __future__ import annotations

import numpy as np
import torch

from evo1_ros.model import Evo1Config, Evo1Model


def make_tiny_model(seed: int = 0, **overrides) -> Evo1Model:
    """A tiny random Evo-1 (same structure as the full model); biases and layer scales made non-trivial."""
    torch.manual_seed(seed)
    model = Evo1Model(Evo1Config.tiny(**overrides)).eval()
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
            elif "lambda" in name:
                p.copy_(0.1 * (1 + 0.25 * torch.randn(p.shape, generator=gen)))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return model


def random_images(seed: int, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in shapes]

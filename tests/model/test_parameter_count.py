"""The full-size model has the released size (≈ 775 M, head ≈ 122.0 M), checked without allocating weights."""

from __future__ import annotations

import torch

from evo1_ros.model import Evo1Config, Evo1Model


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_full_size_parameter_count_on_meta_device():
    with torch.device("meta"):
        model = Evo1Model(Evo1Config())
    assert all(p.device.type == "meta" for p in model.parameters())
    total = _count(model)
    assert abs(total - 775e6) / 775e6 < 0.01, total
    head = _count(model.action_head)
    assert abs(head - 122.03e6) / 122.03e6 < 0.001, head
    blocks = _count(model.action_head.transformer_blocks)
    assert abs(blocks - 77.16e6) / 77.16e6 < 0.001, blocks
    assert _count(model.action_head.seq_pool_proj) == 44_800 * 896 + 896
    vit = _count(model.embedder.model.vision_tower)
    assert abs(vit - 304.0e6) / 304.0e6 < 0.005, vit
    llm = _count(model.embedder.model.language_model)
    assert abs(llm - 344.67e6) / 344.67e6 < 0.001, llm
    assert len(model.embedder.model.language_model.layers) == 14


def test_tiny_model_is_a_few_megabytes():
    model = Evo1Model(Evo1Config.tiny())
    size_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    assert 1 < size_mb < 10

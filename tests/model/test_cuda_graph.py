"""CUDA-graph replay of the head's Euler loop: refuses non-CUDA models; on a GPU equals eager sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evo1_ros.model import Evo1Policy
from evo1_ros.model.modeling.cuda_graph_sampler import CudaGraphHeadSampler
from fixtures.models import make_tiny_model, random_images

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cpu_model_is_refused(tiny_model, tokenizer, norm_stats):
    with pytest.raises(RuntimeError, match="CUDA device"):
        CudaGraphHeadSampler(tiny_model, batch=1, context_length=1024, num_steps=4)
    with pytest.raises(ValueError, match="cuda_graph=True"):
        Evo1Policy(tiny_model, tokenizer, norm_stats, cuda_graph=True)


@needs_cuda
@pytest.mark.parametrize("semantics", ["flash", "masked_head"])
def test_graph_replay_equals_eager_sampling(semantics):
    model = make_tiny_model(seed=4, attention_semantics=semantics).cuda()
    gen = torch.Generator().manual_seed(0)
    fused = torch.randn(2, 1024, 64, generator=gen).cuda()
    state = torch.randn(2, 24, generator=gen).cuda()
    x0 = (torch.rand(2, 1200, generator=gen) * 2 - 1).cuda()
    mask = torch.zeros(24, dtype=torch.bool)
    mask[:7] = True
    context_mask = torch.ones(2, 1024, dtype=torch.bool, device="cuda")
    context_mask[:, 900:] = False
    eager = model.sample_actions(
        fused,
        state,
        mask.cuda(),
        num_steps=6,
        x0=x0,
        context_mask=context_mask if semantics == "masked_head" else None,
    ).actions
    sampler = CudaGraphHeadSampler(model, batch=2, context_length=1024, num_steps=6)
    for _ in range(2):  # replays are repeatable
        graphed = sampler(fused, state, mask, x0, context_mask)
        torch.testing.assert_close(graphed, eager, atol=1e-4, rtol=1e-4)


@needs_cuda
def test_policy_with_graph_matches_policy_without(tokenizer, norm_stats):
    model = make_tiny_model(seed=4).cuda()
    plain = Evo1Policy(model, tokenizer, norm_stats)
    graphed = Evo1Policy(model, tokenizer, norm_stats, cuda_graph=True)
    images = random_images(0, [(480, 640), (480, 640)])
    state = np.zeros(7)
    a = plain.predict(images, [True, True], state, "pick", num_steps=5, generator=1)
    b = graphed.predict(images, [True, True], state, "pick", num_steps=5, generator=1)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-2)

"""Action head: shapes, official parameter names, equivalence with torch's MultiheadAttention layout,
cached keys/values = recomputed, determinism of sampling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evo1_ros.model.modeling.head_layers import CrossAttention
from fixtures.models import make_tiny_model


@pytest.fixture(scope="module")
def model():
    return make_tiny_model(seed=1)


def test_parameter_names_mirror_the_official_hierarchy(model):
    keys = set(model.action_head.state_dict())
    for name in (
        "time_pos_enc.pe",
        "transformer_blocks.0.attn.in_proj_weight",
        "transformer_blocks.0.attn.in_proj_bias",
        "transformer_blocks.0.attn.out_proj.weight",
        "transformer_blocks.1.ff.0.weight",
        "transformer_blocks.1.ff.2.bias",
        "transformer_blocks.0.norm1.weight",
        "norm_out.bias",
        "seq_pool_proj.weight",
        "mlp_head.fc1.linear.weight",
        "mlp_head.fc2.linear.bias",
        "state_encoder.fc2.linear.weight",
        "action_encoder.W1.linear.weight",
        "action_encoder.pos_encoding.pe",
    ):
        assert name in keys, name
    assert model.action_head.state_dict()["seq_pool_proj.weight"].shape == (64, 50 * 64)


def test_cross_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    ours = CrossAttention(64, 4).eval()
    ref = nn.MultiheadAttention(64, 4, batch_first=True).eval()
    ref.load_state_dict(ours.state_dict())  # same parameter layout
    q, ctx = torch.randn(2, 50, 64), torch.randn(2, 30, 64)
    keep = torch.ones(2, 30, dtype=torch.bool)
    keep[1, 20:] = False
    with torch.no_grad():
        expected, _ = ref(q, ctx, ctx, key_padding_mask=~keep)
        got = ours(q, ours.project_context(ctx), keep)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_shapes_and_cached_context(model):
    head = model.action_head
    gen = torch.Generator().manual_seed(0)
    fused, state = torch.randn(3, 1024, 64, generator=gen), torch.randn(3, 24, generator=gen)
    x = torch.rand(3, 50, 24, generator=gen)
    with torch.no_grad():
        cached = head.encode_context(fused, state, cache_keys_values=True)
        plain = head.encode_context(fused, state, cache_keys_values=False)
        assert cached.tokens.shape == (3, 1025, 64)  # 1024 positions + the state token, last
        v1 = head.predict_velocity(x, 500, cached)
        v2 = head.predict_velocity(x, 500, plain)
        v3 = head.predict_velocity(x, torch.tensor([500, 500, 500]), plain)
    assert v1.shape == (3, 1200)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(v1, v3)
    with torch.no_grad():
        other_t = head.predict_velocity(x, 10, cached)
    assert float((other_t - v1).abs().max()) > 1e-4  # time conditioning has an effect


def test_state_token_is_appended_last(model):
    head = model.action_head
    fused, state = torch.randn(1, 8, 64), torch.randn(1, 24)
    with torch.no_grad():
        ctx = head.encode_context(fused, state)
        torch.testing.assert_close(ctx.tokens[:, :8], fused)
        torch.testing.assert_close(ctx.tokens[:, 8], head.state_encoder(state))


def test_sampling_is_deterministic_with_a_seed(model):
    fused, state = torch.randn(2, 1024, 64), torch.randn(2, 24)
    mask = torch.ones(24)
    a = model.sample_actions(fused, state, mask, num_steps=5, generator=torch.Generator().manual_seed(3))
    b = model.sample_actions(fused, state, mask, num_steps=5, generator=torch.Generator().manual_seed(3))
    c = model.sample_actions(fused, state, mask, num_steps=5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.actions, b.actions)
    assert not torch.equal(a.actions, c.actions)
    assert a.actions.shape == (2, 1200) and len(a.velocities) == 5


def test_bad_shapes_are_clear_errors(model):
    head = model.action_head
    with pytest.raises(ValueError, match="state must be"):
        head.encode_context(torch.randn(1, 10, 64), torch.randn(1, 7))
    with pytest.raises(ValueError, match="action_mask shape"):
        model.sample_actions(torch.randn(1, 10, 64), torch.randn(1, 24), torch.ones(7), num_steps=1)
    with pytest.raises(ValueError, match="num_steps"):
        model.sample_actions(torch.randn(1, 10, 64), torch.randn(1, 24), torch.ones(24), num_steps=0)
    with pytest.raises(ValueError, match="time_index"):
        head.predict_velocity(
            torch.zeros(1, 1200), 1000, head.encode_context(torch.randn(1, 4, 64), torch.randn(1, 24))
        )

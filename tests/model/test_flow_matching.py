"""Flow-matching conventions: Beta(2,2) time, uniform noise, x_t, target a − ε, masked MSE, Euler steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evo1_ros.model.modeling import flow_matching as fm
from fixtures.models import make_tiny_model


def test_time_is_beta_2_2_clamped():
    t = fm.sample_time(200_000, torch.Generator().manual_seed(0))
    assert t.dtype == torch.float32
    assert float(t.min()) >= float(torch.tensor(0.02)) and float(t.max()) <= float(torch.tensor(0.98))
    assert abs(float(t.mean()) - 0.5) < 0.005
    assert abs(float(t.var()) - 0.05) < 0.002  # Beta(2,2): var = 1/20 (clamping changes it by < 1e-4)
    # Kolmogorov–Smirnov distance to the Beta(2,2) CDF 3x² − 2x³ inside the clamp range
    xs = np.sort(t.numpy())
    inside = (xs > 0.02) & (xs < 0.98)
    empirical = (np.arange(xs.size) + 1) / xs.size
    cdf = 3 * xs**2 - 2 * xs**3
    assert float(np.abs(empirical - cdf)[inside].max()) < 0.01


def test_draws_are_reproducible_with_a_generator():
    a = fm.sample_noise((4, 50, 24), torch.Generator().manual_seed(7))
    b = fm.sample_noise((4, 50, 24), torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert float(a.min()) >= -1 and float(a.max()) <= 1 and float(a.min()) < -0.99 and float(a.max()) > 0.99
    assert abs(float(a.mean())) < 0.05


def test_interpolation_endpoints_and_target():
    gen = torch.Generator().manual_seed(1)
    noise, actions = torch.rand(3, 50, 24, generator=gen), torch.rand(3, 50, 24, generator=gen)
    torch.testing.assert_close(fm.interpolate(noise, actions, torch.zeros(3)), noise)
    torch.testing.assert_close(fm.interpolate(noise, actions, torch.ones(3)), actions)
    t = torch.tensor([0.1, 0.5, 0.9])
    x_t = fm.interpolate(noise, actions, t)
    torch.testing.assert_close(x_t[1], 0.5 * noise[1] + 0.5 * actions[1])
    # d x_t / d t along the straight path is the target, for every t
    eps = 1e-3
    numeric = (fm.interpolate(noise, actions, t + eps) - fm.interpolate(noise, actions, t - eps)) / (2 * eps)
    torch.testing.assert_close(numeric, fm.velocity_target(noise, actions), atol=1e-3, rtol=0)


def test_time_indices():
    assert fm.time_index_from_t(torch.tensor([0.3321985900402069])).item() == 332
    assert fm.time_index_from_t(torch.tensor([0.98])).item() == 980
    assert fm.time_index_from_t(torch.tensor([0.0015])).item() == 1
    assert [fm.time_index_for_step(i, 4) for i in range(4)] == [0, 250, 500, 750]
    assert fm.time_index_for_step(31, 32) == 968


def test_masked_mse_counts_only_active_dims():
    pred = torch.ones(2, 10)
    target = torch.zeros(2, 10)
    mask = torch.zeros(2, 10)
    mask[:, :3] = 1
    pred[:, 3:] = 100.0  # padded dims must not count
    assert fm.masked_mse(pred, target, mask).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no active"):
        fm.masked_mse(pred, target, torch.zeros(2, 10))


def test_euler_matches_closed_forms():
    x0 = torch.tensor([[1.0, -2.0, 0.5]])
    # constant field: exact after any number of steps
    final, vs = fm.euler_integrate(lambda x, i: torch.full_like(x, 3.0), x0, 7)
    torch.testing.assert_close(final, x0 + 3.0)
    assert len(vs) == 7
    # linear field v = −x: Euler gives x0·(1 − 1/N)^N exactly (→ x0/e as N grows)
    n = 32
    final, _ = fm.euler_integrate(lambda x, i: -x, x0, n)
    torch.testing.assert_close(final, x0 * (1 - 1 / n) ** n)
    assert abs(float(final[0, 0]) - math.exp(-1)) < 0.01
    # time-dependent field v = t (t = i/N): left Riemann sum = (N − 1)/(2N)
    final, _ = fm.euler_integrate(lambda x, i: torch.full_like(x, i / n), torch.zeros(1, 1), n)
    assert float(final) == pytest.approx((n - 1) / (2 * n))


def test_euler_feeds_the_masked_state_but_updates_the_unmasked_one():
    seen = []

    def field(x, i):
        seen.append(x.clone())
        return torch.ones_like(x)

    x0 = torch.tensor([[0.5, 0.5]])
    mask = torch.tensor([[1.0, 0.0]])
    final, _ = fm.euler_integrate(field, x0, 2, mask)
    assert float(seen[0][0, 1]) == 0.0 and float(seen[1][0, 1]) == 0.0
    torch.testing.assert_close(final, torch.tensor([[1.5, 1.5]]))


def test_training_loss_is_mse_to_actions_minus_noise():
    model = make_tiny_model(seed=2)
    gen = torch.Generator().manual_seed(4)
    fused = torch.randn(2, 1024, 64, generator=gen)
    state = torch.rand(2, 24, generator=gen) * 2 - 1
    actions = torch.zeros(2, 50, 24)
    actions[..., :7] = torch.rand(2, 50, 7, generator=gen) * 2 - 1
    mask = torch.zeros(2, 24, dtype=torch.bool)
    mask[:, :7] = True
    out = model.flow_matching_loss(fused, state, actions, mask, generator=torch.Generator().manual_seed(9))
    assert out.noise.shape == (2, 50, 24)
    assert float(out.noise[..., 7:].abs().max()) == 0.0  # noise masked on padded dims
    assert float(out.t.min()) > 0.0199 and float(out.t.max()) < 0.9801
    torch.testing.assert_close(out.target, (actions - out.noise).reshape(2, -1))
    active = mask.view(2, 1, 24).expand(2, 50, 24).reshape(2, -1)
    manual = ((out.pred_velocity - out.target)[active] ** 2).mean()
    torch.testing.assert_close(out.loss, manual)
    out.loss.backward()
    assert model.action_head.seq_pool_proj.weight.grad is not None
    model.zero_grad(set_to_none=True)
    # the same generator seed replays the same draw
    again = model.flow_matching_loss(fused, state, actions, mask, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(again.loss, out.loss)

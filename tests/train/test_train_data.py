"""Windows, padding modes, stats and augmentation of the training data path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from evo1_ros.model import Evo1Config
from evo1_ros.model.processing.images import to_uint8_tile
from evo1_ros.train.augment import AugmentSettings, augment_view
from evo1_ros.train.config import DatasetEntry
from evo1_ros.train.data import ResumableBatchSampler, SampleOrder, WindowDataset, resolve_datasets
from evo1_ros.train.trainer import loss_mask, lr_factor, param_groups
from fixtures.training import TINY_MODEL


@pytest.fixture(scope="module")
def model_cfg() -> Evo1Config:
    fields = {k: v for k, v in TINY_MODEL.items() if k != "preset"}
    return Evo1Config.tiny(vocab_size=260, img_context_token_id=259, **fields)


def _prompts(cfg: Evo1Config, tasks: list[str]) -> dict:
    ids = torch.full((cfg.max_text_length,), 256)
    n = cfg.num_views * cfg.image_tokens_per_view
    ids[:n] = cfg.img_context_token_id
    return {t: (ids, torch.ones_like(ids)) for t in tasks}


def test_last_window_of_an_episode_pads_with_the_last_action(synth_ds: Path, model_cfg: Evo1Config) -> None:
    plan = resolve_datasets([DatasetEntry(str(synth_ds))], model_cfg, validate="off")
    reader = plan.datasets[0].reader
    ds = WindowDataset(plan, model_cfg, _prompts(model_cfg, plan.tasks), augmentation=False)
    _, stop = reader.episode_bounds(0)
    item = ds[(stop - 2, 0)]  # two frames before the end: horizon 4 → two padded steps
    assert item["action_is_pad"].tolist() == [False, False, True, True]
    a = item["actions"]
    assert torch.equal(a[2], a[1]) and torch.equal(a[3], a[1])  # official last-row padding
    assert item["image_mask"].tolist() == [True, False, False]  # one camera: views 2, 3 masked
    assert (
        int(item["attention_mask"].sum()) == model_cfg.max_text_length - 2 * model_cfg.image_tokens_per_view
    )
    batch = {k: v.unsqueeze(0) for k, v in item.items()}
    last_row = loss_mask(batch, "last_row")[0]
    masked = loss_mask(batch, "mask")[0]
    assert last_row[:, :7].all() and not last_row[:, 7:].any()  # 7 real dims of 8
    assert masked[:2, :7].all() and not masked[2:].any()  # padded steps leave the loss
    lo = reader.column("observation.state").min(axis=0)
    np.testing.assert_allclose(plan.stats["xarm6"].state_min, lo, atol=1e-6)


def test_sample_order_is_a_function_of_step_and_splits_over_ranks() -> None:
    order = SampleOrder(10, seed=3)
    one = ResumableBatchSampler(order, 4, 0, 6)
    r0 = ResumableBatchSampler(SampleOrder(10, 3), 4, 0, 6, rank=0, world=2)
    r1 = ResumableBatchSampler(SampleOrder(10, 3), 4, 0, 6, rank=1, world=2)
    for step in range(6):
        assert one.batch(step) == r0.batch(step) + r1.batch(step)
    resumed = ResumableBatchSampler(SampleOrder(10, 3), 4, 3, 6)
    assert list(resumed) == list(one)[3:]
    epoch = sorted(order.index(p) for p in range(10))
    assert epoch == list(range(10))  # each epoch is a permutation


def test_augmentation_is_seeded_and_follows_the_official_ranges() -> None:
    img = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).permute(
        2, 0, 1
    )
    a = augment_view(img, 56, torch.Generator().manual_seed(1), AugmentSettings(p=1.0))
    b = augment_view(img, 56, torch.Generator().manual_seed(1), AugmentSettings(p=1.0))
    c = augment_view(img, 56, torch.Generator().manual_seed(2), AugmentSettings(p=1.0))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 56, 56) and float(a.min()) >= 0 and float(a.max()) <= 255
    assert torch.equal(a, a.round())
    plain = augment_view(img, 56, torch.Generator().manual_seed(1), AugmentSettings(p=0.0))
    assert torch.equal(plain, to_uint8_tile(img, 56))  # not augmented = the inference preprocessing


def test_optimizer_groups_and_schedule() -> None:
    layer = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    decay, no_decay = param_groups(layer, 1e-3)
    assert [p.shape for p in decay["params"]] == [(4, 3)]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100) == pytest.approx(0.0)

"""Evo1Policy: robot-unit chunks of the right shape, determinism, batching, and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures.models import random_images

STATE = np.array([10.0, -20.0, -50.0, 0.0, 30.0, 5.0, 400.0])
TASK = "pick up the red can"


@pytest.fixture(scope="module")
def images():
    return random_images(7, [(480, 640), (448, 448), (120, 160)])


def test_predict_shape_units_and_determinism(tiny_policy, images, norm_stats):
    a = tiny_policy.predict(images, [True, True, False], STATE, TASK, num_steps=3, generator=42)
    assert a.shape == (50, 7) and a.dtype == np.float32
    b = tiny_policy.predict(images, [True, True, False], STATE, TASK, num_steps=3, generator=42)
    np.testing.assert_array_equal(a, b)
    c = tiny_policy.predict(images, [True, True, False], STATE, TASK, num_steps=3, generator=43)
    assert not np.array_equal(a, c)
    # robot units: the output is the denormalised normalised chunk
    normalized = 2 * (a - norm_stats.action_min) / (norm_stats.action_max - norm_stats.action_min) - 1
    assert np.isfinite(normalized).all() and np.abs(normalized).max() < 20


def test_seed_as_generator_object(tiny_policy, images):
    a = tiny_policy.predict(
        images[:1], [True], STATE, TASK, num_steps=2, generator=torch.Generator().manual_seed(9)
    )
    b = tiny_policy.predict(images[:1], [True], STATE, TASK, num_steps=2, generator=9)
    np.testing.assert_array_equal(a, b)


def test_inputs_matter(tiny_policy, images):
    base = tiny_policy.predict(images[:2], [True, True], STATE, TASK, num_steps=2, generator=0)
    other_task = tiny_policy.predict(
        images[:2], [True, True], STATE, "stack the cans", num_steps=2, generator=0
    )
    other_state = tiny_policy.predict(images[:2], [True, True], STATE + 5, TASK, num_steps=2, generator=0)
    absent = tiny_policy.predict(images[:2], [True, False], STATE, TASK, num_steps=2, generator=0)
    for other in (other_task, other_state, absent):
        assert not np.allclose(base, other)


def test_absent_view_may_be_none_and_missing_views_are_padded(tiny_policy, images):
    a = tiny_policy.predict([images[0], None], [True, False], STATE, TASK, num_steps=2, generator=0)
    b = tiny_policy.predict([images[0]], [True], STATE, TASK, num_steps=2, generator=0)
    c = tiny_policy.predict(
        [images[0], images[1], images[2]], [True, False, False], STATE, TASK, num_steps=2, generator=0
    )
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)  # masked views are black whatever was passed


def test_batch_matches_single(tiny_policy, images):
    batch = tiny_policy.predict_batch(
        [images[:2], [images[2]]],
        [[True, True], [True]],
        np.stack([STATE, STATE * 0.5]),
        [TASK, "stack the cans"],
        num_steps=2,
        generator=3,
    )
    assert batch.shape == (2, 50, 7)
    single = tiny_policy.predict(images[:2], [True, True], STATE, TASK, num_steps=2, generator=3)
    np.testing.assert_allclose(batch[0], single, rtol=1e-5, atol=1e-3)  # robot units (up to 850)


def test_action_mask_forms(tiny_policy, images):
    a = tiny_policy.predict(images[:1], [True], STATE, TASK, num_steps=2, generator=0)
    b = tiny_policy.predict(images[:1], [True], STATE, TASK, num_steps=2, generator=0, action_mask=[True] * 7)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="action_mask"):
        tiny_policy.predict(images[:1], [True], STATE, TASK, action_mask=[True] * 5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"images": [np.zeros((10, 10, 3), dtype=np.float32)]}, ValueError, "uint8"),
        ({"images": [np.zeros((10, 10, 4), dtype=np.uint8)]}, ValueError, "alpha"),
        ({"images": [np.zeros((10, 10), dtype=np.uint8)]}, ValueError, "3 RGB channels"),
        ({"images": ["not an image"]}, TypeError, "numpy array"),
        ({"images": [None]}, ValueError, "is None"),
        (
            {"images": [np.zeros((8, 8, 3), np.uint8)] * 4, "image_mask": [True] * 4},
            ValueError,
            "1 to 3 views",
        ),
        ({"image_mask": [True, True]}, ValueError, "image_mask has 2 entries"),
        ({"image_mask": [False]}, ValueError, "no present view"),
        ({"state": np.zeros(6)}, ValueError, "7 values"),
        ({"state": np.array([np.nan] * 7)}, ValueError, "NaN"),
        ({"state": np.array(["a"] * 7)}, TypeError, "numeric"),
        ({"task": 5}, TypeError, "task must be a str"),
        ({"num_steps": 0}, ValueError, "num_steps"),
        ({"generator": "seed"}, TypeError, "generator"),
    ],
)
def test_bad_inputs_raise_clear_errors(tiny_policy, kwargs, error, message):
    args = {
        "images": [np.zeros((32, 32, 3), np.uint8)],
        "image_mask": [True],
        "state": STATE,
        "task": TASK,
        "num_steps": 1,
    }
    args.update(kwargs)
    with pytest.raises(error, match=message):
        tiny_policy.predict(**args)

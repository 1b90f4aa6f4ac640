"""Stats follow LeRobot's definition: sample counts, strided frames, population std, (3,1,1) images in 0..1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recording.dataset.stats import (
    downsample_stride,
    estimate_num_samples,
    image_stats_from_frames,
    numeric_stats,
    sample_indices,
)


@pytest.mark.parametrize(
    ("length", "n"),
    [(1, 1), (12, 12), (99, 99), (100, 100), (460, 100), (1000, 177), (10000, 1000), (300000, 10000)],
)
def test_num_samples(length: int, n: int) -> None:
    assert estimate_num_samples(length) == n
    idx = sample_indices(length)
    assert len(idx) == n and idx[0] == 0 and idx[-1] == length - 1 and idx == sorted(idx)


@pytest.mark.parametrize(
    ("h", "w", "stride"),
    [(48, 64, 1), (299, 299, 1), (300, 200, 2), (448, 448, 2), (480, 640, 4), (720, 1280, 8)],
)
def test_stride(h: int, w: int, stride: int) -> None:
    assert downsample_stride(h, w) == stride


def _reference_image_stats(frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Straight from the definition: stack strided CHW frames, reduce over (N, H, W), divide by 255."""
    s = downsample_stride(*frames[0].shape[:2])
    x = np.stack([f.transpose(2, 0, 1)[:, ::s, ::s] for f in frames])
    return {
        "min": x.min(axis=(0, 2, 3))[:, None, None] / 255.0,
        "max": x.max(axis=(0, 2, 3))[:, None, None] / 255.0,
        "mean": x.mean(axis=(0, 2, 3))[:, None, None] / 255.0,
        "std": x.std(axis=(0, 2, 3))[:, None, None] / 255.0,
    }


@settings(max_examples=40, deadline=None)
@given(frames=st.lists(arrays(np.uint8, (6, 8, 3)), min_size=1, max_size=5))
def test_image_stats_equal_stacked_reduction(frames: list[np.ndarray]) -> None:
    got = image_stats_from_frames(frames)
    want = _reference_image_stats(frames)
    for k in ("min", "max", "mean", "std"):
        assert got[k].shape == (3, 1, 1)
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12)
    assert got["count"].tolist() == [len(frames)]


def test_image_stats_on_large_frames_use_stride() -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (320, 400, 3), dtype=np.uint8) for _ in range(3)]
    got = image_stats_from_frames(frames)
    np.testing.assert_allclose(got["std"], _reference_image_stats(frames)["std"], rtol=1e-9)
    full = np.stack(frames).reshape(-1, 3).std(axis=0) / 255.0
    assert not np.allclose(got["std"].ravel(), full, rtol=1e-9)  # really strided


def test_numeric_stats_shapes() -> None:
    v = np.arange(12, dtype=np.float32).reshape(4, 3)
    s = numeric_stats(v)
    assert s["min"].tolist() == [0, 1, 2] and s["max"].tolist() == [9, 10, 11]
    np.testing.assert_allclose(s["std"], v.std(axis=0))
    assert s["count"].tolist() == [4]
    s1 = numeric_stats(np.array([1, 2, 3], dtype=np.int64))
    assert s1["mean"].tolist() == [2.0] and s1["count"].tolist() == [3]
    with pytest.raises(ValueError, match="non-empty"):
        numeric_stats(np.zeros((0, 3)))

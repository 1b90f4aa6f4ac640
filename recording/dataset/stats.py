"""Per-episode statistics exactly as LeRobot v2.1 stores them (docs/lerobot_v21.md §6).

Numeric features: min/max/mean/std (population) over the frames of the episode, count = [length].
Image/video features: per channel over a subsample of frames, each frame strided down when large,
values scaled to 0..1, shape (3, 1, 1); count = number of sampled frames.

Image stats are accumulated per frame as exact integer sums (min, max, sum, sum of squares per
channel of the strided frame), so a recorder need not keep frames in memory until it knows the final
episode length; combining the sums of the sampled frames gives the same numbers as reducing the
stacked sampled frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_SAMPLES = 100
MAX_SAMPLES = 10_000
SAMPLE_POWER = 0.75
DOWNSAMPLE_TARGET = 150
DOWNSAMPLE_THRESHOLD = 300


def estimate_num_samples(length: int) -> int:
    """How many frames of an episode of ``length`` frames feed the image stats."""
    min_samples = min(MIN_SAMPLES, length)
    return max(min_samples, min(int(length**SAMPLE_POWER), MAX_SAMPLES))


def sample_indices(length: int) -> list[int]:
    """Evenly spaced frame indices used for image stats (rounded, as numpy rounds)."""
    if length <= 0:
        return []
    n = estimate_num_samples(length)
    return np.round(np.linspace(0, length - 1, n)).astype(int).tolist()


def downsample_stride(height: int, width: int) -> int:
    """Stride applied to a frame before reducing it (1 = full size)."""
    if max(height, width) < DOWNSAMPLE_THRESHOLD:
        return 1
    return int(width / DOWNSAMPLE_TARGET) if width > height else int(height / DOWNSAMPLE_TARGET)


@dataclass
class ImageFrameStats:
    """Exact per-channel sums of one (strided) frame; combined later for the sampled frames."""

    min: np.ndarray  # (3,) uint8
    max: np.ndarray  # (3,) uint8
    sum: list[int]  # per channel
    sumsq: list[int]
    pixels: int  # per channel


def image_frame_stats(frame: np.ndarray) -> ImageFrameStats:
    """Stats of one HxWx3 uint8 frame after the LeRobot stride."""
    s = downsample_stride(frame.shape[0], frame.shape[1])
    px = frame[::s, ::s].reshape(-1, 3)
    wide = px.astype(np.uint32)
    return ImageFrameStats(
        min=px.min(axis=0),
        max=px.max(axis=0),
        sum=[int(v) for v in wide.sum(axis=0, dtype=np.uint64)],
        sumsq=[int(v) for v in (wide * wide).sum(axis=0, dtype=np.uint64)],
        pixels=px.shape[0],
    )


def combine_image_stats(frames: Sequence[ImageFrameStats]) -> dict[str, np.ndarray]:
    """LeRobot image stats (0..1, shape (3,1,1)) from the per-frame sums of the sampled frames."""
    if not frames:
        raise ValueError("image stats need at least one frame")
    n = sum(f.pixels for f in frames)
    mins = np.min(np.stack([f.min for f in frames]), axis=0).astype(np.float64)
    maxs = np.max(np.stack([f.max for f in frames]), axis=0).astype(np.float64)
    mean = np.empty(3)
    std = np.empty(3)
    for c in range(3):
        s1 = sum(f.sum[c] for f in frames)
        s2 = sum(f.sumsq[c] for f in frames)
        mean[c] = s1 / n
        std[c] = math.sqrt(max(n * s2 - s1 * s1, 0)) / n  # exact integer variance
    return {
        "min": (mins / 255.0).reshape(3, 1, 1),
        "max": (maxs / 255.0).reshape(3, 1, 1),
        "mean": (mean / 255.0).reshape(3, 1, 1),
        "std": (std / 255.0).reshape(3, 1, 1),
        "count": np.array([len(frames)], dtype=np.int64),
    }


def image_stats_from_frames(frames: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Image stats of already-sampled HxWx3 uint8 frames (used by the validator on decoded video)."""
    return combine_image_stats([image_frame_stats(f) for f in frames])


def numeric_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats of a numeric column: (L,) or (L, N) -> vectors of length 1 or N, count = [L]."""
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"numeric stats need a non-empty (L,) or (L, N) array, got shape {arr.shape}")
    a = arr.astype(np.float64)
    return {
        "min": a.min(axis=0),
        "max": a.max(axis=0),
        "mean": a.mean(axis=0),
        "std": a.std(axis=0),
        "count": np.array([arr.shape[0]], dtype=np.int64),
    }


def stats_to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """Nested lists for episodes_stats.jsonl (key order min, max, mean, std, count)."""
    out: dict[str, dict[str, Any]] = {}
    for feat, st in stats.items():
        out[feat] = {k: np.asarray(st[k]).tolist() for k in ("min", "max", "mean", "std", "count")}
    return out


def compare_stats(
    stored: dict[str, Any],
    fresh: dict[str, np.ndarray],
    *,
    atol: dict[str, float],
    rtol: float = 1e-5,
    keys: Sequence[str] = ("min", "max", "mean", "std", "count"),
) -> list[str]:
    """Compare one feature's stored stats (JSON) with recomputed ones; returns reasons, empty if equal."""
    problems: list[str] = []
    for k in keys:
        if k not in stored:
            problems.append(f"'{k}' missing")
            continue
        try:
            got = np.asarray(stored[k], dtype=np.float64)
        except (TypeError, ValueError):
            problems.append(f"'{k}' is not numeric")
            continue
        want = np.asarray(fresh[k], dtype=np.float64)
        if got.shape != want.shape:
            problems.append(f"'{k}' has shape {got.shape}, expected {want.shape}")
            continue
        tol = 0.0 if k == "count" else atol.get(k, 1e-6)
        if not np.all(np.isfinite(got)) or not np.allclose(
            got, want, rtol=0.0 if k == "count" else rtol, atol=tol
        ):
            worst = float(np.max(np.abs(got - want))) if np.all(np.isfinite(got)) else float("nan")
            problems.append(
                f"'{k}' differs from recomputed value (max abs diff {worst:.3g}, tolerance {tol:g})"
            )
    return problems

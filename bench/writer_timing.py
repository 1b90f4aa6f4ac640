"""Timing summary shared by the writer benchmarks (ours and the LeRobot baseline in its own venv).

Only numpy (and PyAV, imported where used): the baseline process runs in the compat venv and
imports this by path, so both sides report exactly the same fields computed the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3)


def timing_summary(
    episodes: int, frames: int, wall: float, cpu: float, add_ms: list[float], saves: list[dict[str, float]]
) -> dict[str, Any]:
    """Wall/CPU time, throughput, add_frame percentiles and save latencies of one writer run.

    `saves` has one dict per episode with at least "save_s"; extra keys are kept as they are.
    """
    save_s = [s["save_s"] for s in saves]
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_cores_used": round(cpu / wall, 2),
        "frames_per_s": round(episodes * frames / wall, 1),
        "add_frame_ms_p50": pct(add_ms, 50),
        "add_frame_ms_p99": pct(add_ms, 99),
        "add_frame_ms_max": round(float(np.max(add_ms)), 3),
        "add_frames_total_s": round(sum(add_ms) / 1e3, 3),
        "save_latency_s_mean": round(float(np.mean(save_s)), 3),
        "save_latency_s_max": round(float(np.max(save_s)), 3),
        "saves": saves,
    }


def dataset_mb(root: Path) -> float:
    """Size of every file under the dataset root (MB)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def codec_in_file(root: Path) -> str:
    """Codec of the first mp4 under the dataset root, as PyAV reads it back."""
    import av

    with av.open(str(sorted(root.rglob("*.mp4"))[0])) as c:
        return c.streams.video[0].codec_context.codec.canonical_name

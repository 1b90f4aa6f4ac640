"""Timing summary shared by the writer benchmarks (ours and the LeRobot baseline in its own venv).

Only numpy: the baseline process runs in the compat venv and imports this by path, so both sides
report exactly the same fields computed the same way.
"""

from __future__ import annotations

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

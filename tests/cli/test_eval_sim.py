"""`evo1 eval sim --policy expert`: seeded episodes through the real graph, outcomes, videos, summary, plot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

REPO = Path(__file__).resolve().parents[2]


def _eval(ros_env, *args: str, timeout: float = 280) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evo1_ros.cli.main", "eval", "sim", *args],
        env={**os.environ, **ros_env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_eval_expert_three_episodes(tmp_path, ros_env):
    out = tmp_path / "eval"
    result = _eval(
        ros_env, "--policy", "expert", "--task", "pick_place_can", "--episodes", "3", "--seed", "20",
        "--image-size", "48", "--camera-rate", "10", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 3 and [e["seed"] for e in summary["per_episode"]] == [20, 21, 22]
    assert summary["successes"] == sum(e["success"] for e in summary["per_episode"])
    assert summary["successes"] >= 2, summary  # the expert rarely fails; a broken graph fails all
    assert f"{summary['successes']}/3 successes" in result.stdout
    for e in summary["per_episode"]:
        if e["success"]:
            assert 0 < e["time_to_success"] < 60
        with av.open(e["video"]) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames > 20, e
    assert (out / "summary.png").stat().st_size > 1000


def test_eval_rejects_a_missing_checkpoint(tmp_path, ros_env):
    result = _eval(ros_env, "--policy", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), timeout=60)
    assert result.returncode == 2 and "checkpoint folder" in result.stderr


@pytest.mark.slow
def test_eval_a_checkpoint_runs_the_policy_node(tmp_path, ros_env):
    """A (tiny, untrained) checkpoint is run by the real evo1_policy node; its outcome and latencies
    are reported, whatever the model does (here its safety filter is expected to stop it)."""
    from fixtures.policy import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "eval"
    result = _eval(
        ros_env, "--policy", str(checkpoint), "--episodes", "1", "--time-limit", "30",
        "--image-size", "48", "--out", str(out), timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 1 and summary["per_episode"][0]["error"]
    assert summary["inference_latency"]["n"] >= 1

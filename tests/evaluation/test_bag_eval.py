"""`evo1 bag eval`: a stand-in policy that reproduces the recorded actions scores ~0, a shift scores the shift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evo1_ros.evaluation.bag_eval import EvalSettings, evaluate
from fixtures.bags import converter_params, write_teleop_bag
from fixtures.datasets import CAMERAS, write_features

REPO = Path(__file__).resolve().parents[2]
HORIZON = 5


def stand_in(images, mask, state, task):
    """What the demonstrator did in write_teleop_bag: target = state + 0.05, state rising 0.01 per frame."""
    assert mask == [True, True] and all(img.shape == (48, 64, 3) for img in images)
    assert task == "pick up the can and place it on the plate"
    return np.stack([state + 0.05 + 0.01 * h for h in range(HORIZON)])


@pytest.mark.parametrize("shift", [0.0, 0.1])
def test_stand_in_policy_scores_zero_and_the_shift(tmp_path, shift):
    bag = write_teleop_bag(tmp_path / "bag", seconds=2.0, action_fn=lambda q: q + 0.05 + shift)
    params = converter_params(write_features(tmp_path / "f.yaml", fps=10))
    report = evaluate(
        bag,
        stand_in,
        tmp_path / "out",
        EvalSettings(view_map=CAMERAS),
        task="pick_place_can",
        recorder_params=params,
    )
    assert report["horizon"] == HORIZON
    assert report["mae_mean"] == pytest.approx(shift, abs=1e-5)
    assert report["rmse_mean"] == pytest.approx(shift, abs=1e-5)
    by_h = np.asarray(report["by_horizon"]["mae"])
    assert by_h.shape == (HORIZON, 7)
    np.testing.assert_allclose(by_h, shift, atol=1e-5)
    assert report["by_horizon"]["count"][0] > report["by_horizon"]["count"][-1] > 0  # the end has no future
    assert json.loads((tmp_path / "out" / "report.json").read_text())["mae_mean"] == report["mae_mean"]
    assert all(Path(p).stat().st_size > 1000 for p in report["plots"])


def test_eval_cli_with_a_checkpoint_on_a_dataset(tmp_path, capsys):
    """The real model path: tiny checkpoint, LeRobot dataset in, finite report out."""
    from evo1_ros.cli.main import main
    from fixtures.policy import make_checkpoint
    from recording.bag.to_lerobot import ConvertOptions, convert

    ckpt = make_checkpoint(tmp_path / "ckpt")
    bag = write_teleop_bag(tmp_path / "bag", seconds=1.0)
    features = write_features(tmp_path / "f.yaml", fps=10)
    convert([bag], tmp_path / "ds", ConvertOptions(converter_params(features), task="t"))
    argv = ["bag", "eval", str(tmp_path / "ds"), "--checkpoint", str(ckpt), "-o", str(tmp_path / "out")]
    assert main([*argv, "--view-map", *CAMERAS, "--horizon", "4", "--stride", "3"]) == 0, (
        capsys.readouterr().err
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["horizon"] == 4 and np.isfinite(report["mae_mean"]) and report["mae_mean"] > 0
    assert main([*argv[:3], "--checkpoint", str(tmp_path / "nope"), "-o", str(tmp_path / "o2")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1

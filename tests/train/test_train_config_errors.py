"""Each bad config stops `evo1 train` before any compute with one clear line (exit 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evo1_ros.cli.main import main
from fixtures.training import f_state_dataset

TINY = ["model.preset=tiny", "model.image_size=56", "model.max_text_length=96", "progress=false", "threads=1"]


def _fails(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> str:
    code = main(["train", *args, "--out", str(out), *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("evo1 train: error: "), err
    assert not (out / "checkpoints").exists()  # nothing was trained
    return lines[0]


def test_unknown_dataset_path(capsys, tmp_path: Path) -> None:
    line = _fails(capsys, tmp_path / "o", "--dataset", str(tmp_path / "nope"))
    assert "dataset path not found" in line and "nope" in line


def test_view_mapped_to_a_missing_camera(capsys, tmp_path: Path, synth_ds: Path) -> None:
    spec = f"datasets=[{{path: '{synth_ds}', view_map: {{image_1: base, image_2: wrist}}}}]"
    line = _fails(capsys, tmp_path / "o", spec)
    assert "image_2 -> 'wrist'" in line and "observation.images.base" in line


def test_action_dim_above_24(capsys, tmp_path: Path) -> None:
    ds = f_state_dataset(tmp_path / "wide", episodes=1, frames=3, action_dim=25)
    line = _fails(capsys, tmp_path / "o", "--dataset", str(ds))
    assert "25 action dims" in line and "at most 24" in line


def test_state_dim_above_the_models(capsys, tmp_path: Path, synth_ds: Path) -> None:
    line = _fails(capsys, tmp_path / "o", "--dataset", str(synth_ds), "model.state_dim=4")
    assert "7 state dims" in line and "state_dim is 4" in line


def test_dataset_failing_validation(capsys, tmp_path: Path, synth_ds: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(synth_ds, bad)
    (bad / "data" / "chunk-000" / "episode_000001.parquet").unlink()
    line = _fails(capsys, tmp_path / "o", "--dataset", str(bad))
    assert "fails validation" in line and "episode_000001.parquet" in line


def test_config_typos_and_values(capsys, tmp_path: Path, synth_ds: Path) -> None:
    line = _fails(capsys, tmp_path / "o", "--dataset", str(synth_ds), "stepz=3")
    assert "unknown config key(s) ['stepz']" in line
    line = _fails(capsys, tmp_path / "o", "--dataset", str(synth_ds), "pad_mode=zeros")
    assert "pad_mode='zeros'" in line

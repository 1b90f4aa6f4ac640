"""Validator item 7: image stats vs decoded video are a warning (error only when strict).

Pure-noise frames encoded at LeRobot 0.3.3's default settings (libsvtav1, yuv420p, g=2, crf=30) lose
much of their pixel std in the codec; the dataset is still one LeRobot writes and loads.
"""

from __future__ import annotations

import json

import numpy as np

from fixtures.datasets import JOINTS
from recording.dataset.features import CameraSpec, DatasetFeatures
from recording.dataset.validator import validate_dataset
from recording.dataset.video_settings import VideoSettings
from recording.dataset.writer import LeRobotWriter


def _noise_dataset(root, frames: int = 12):
    video = VideoSettings()  # LeRobot's defaults: libsvtav1, g=2, crf=30, yuv420p
    assert video.encoder() == "libsvtav1" and video.options()["crf"] == "30" and video.options()["g"] == "2"
    feats = DatasetFeatures(JOINTS, JOINTS, (CameraSpec("base", 96, 128),))
    rng = np.random.default_rng(0)
    with LeRobotWriter.create(root, 10, feats, video=video) as w:
        w.start_episode("noise")
        for _ in range(frames):
            q = rng.uniform(-1, 1, len(JOINTS))
            w.add_frame(q, q, {"base": rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)})
        w.save_episode()
    return root


def test_noise_frames_warn_and_fail_only_when_strict(tmp_path, capsys):
    from evo1_ros.cli.main import main

    root = _noise_dataset(tmp_path / "ds")
    report = validate_dataset(root)
    assert report.ok, [str(p) for p in report.problems]
    assert report.warnings and all("vs decoded video" in w.reason for w in report.warnings)
    assert any("std" in w.reason for w in report.warnings)
    strict = validate_dataset(root, strict=True)
    assert not strict.ok
    assert {str(p) for p in strict.problems} == {str(w) for w in report.warnings}

    assert main(["dataset", "validate", str(root)]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "OK:" in out
    assert main(["dataset", "validate", str(root), "--strict"]) == 1
    capsys.readouterr()
    assert main(["dataset", "validate", str(root), "--json"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out[out.index("{") :])
    assert doc["ok"] and doc["warnings"] and not doc["problems"]


def test_smooth_frames_have_no_warning(golden):
    report = validate_dataset(golden)
    assert report.ok and not report.warnings

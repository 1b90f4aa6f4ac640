"""The shipped configs parse: xArm6 features (joint1..joint6 + drive_joint, cameras) and the four tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from evo1_ros.paths import config_file
from recording.dataset.features import DatasetFeatures, load_features_config
from recording.dataset.video_settings import VideoSettings
from recording.tasks_catalogue import load_tasks, resolve_task

JOINTS = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "drive_joint"]


def test_dataset_features_yaml() -> None:
    feats, cfg = load_features_config(config_file("dataset_features.yaml"))
    assert list(feats.state_names) == JOINTS and list(feats.action_names) == JOINTS
    assert [(c.name, c.height, c.width) for c in feats.cameras] == [("base", 480, 640), ("wrist", 480, 640)]
    assert cfg["robot_type"] == "xarm6" and cfg["fps"] == 30
    video = VideoSettings.from_config(cfg["video"])
    assert video.encoder() in ("libsvtav1", "libx264") and video.options()["g"] == "2"
    info = feats.to_info_features(video.info_block(30))
    assert DatasetFeatures.from_info_features(info) == feats


def test_tasks_yaml_has_the_four_paper_tasks() -> None:
    tasks = load_tasks(config_file("tasks.yaml"))
    assert set(tasks) == {"pick_place_can", "pour_foam", "hand_delivery", "can_stacking"}
    assert all(t.prompt for t in tasks.values())
    assert resolve_task(tasks, "can_stacking") == tasks["can_stacking"].prompt
    assert resolve_task(tasks, "wave hello") == "wave hello"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("state: {names: [a]}\n", "needs state.names and action.names"),
        ("state: {names: [a, a]}\naction: {names: [b]}\n", "state: duplicate names"),
        (
            "state: {names: [a]}\naction: {names: [b]}\ncameras: {c: {height: 48}}\n",
            "camera 'c': needs integer",
        ),
        (
            "state: {names: [a]}\naction: {names: [b]}\nextra: {my_image: {dtype: int64}}\n",
            "'image' in a non-image",
        ),
        ("- 1\n", "top level must be a mapping"),
    ],
)
def test_bad_features_config(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "f.yaml"
    p.write_text(text)
    with pytest.raises(ValueError) as exc:
        load_features_config(p)
    assert str(p) in str(exc.value) and message in str(exc.value)


def test_bad_video_settings() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        VideoSettings.from_config({"codec": "libx264", "bitrate": 5})
    with pytest.raises(ValueError, match="pix_fmt"):
        VideoSettings.from_config({"pix_fmt": "yuv444p"})

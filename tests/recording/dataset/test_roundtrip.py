"""Write -> validate -> read back: pixels within codec tolerance, numbers exact, stats recomputable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fixtures.datasets import FPS, JOINTS, make_dataset
from recording.dataset.features import CameraSpec, DatasetFeatures, ExtraSpec
from recording.dataset.reader import LeRobotReader
from recording.dataset.stats import image_stats_from_frames, numeric_stats, sample_indices
from recording.dataset.synth import synthetic_image, synthetic_joints
from recording.dataset.validator import validate_dataset
from recording.dataset.video_decode import probe
from recording.dataset.video_settings import VideoSettings, encoder_available
from recording.dataset.writer import LeRobotWriter


@pytest.mark.parametrize("codec", ["libx264", "libsvtav1"])
def test_write_validate_read_back(tmp_path: Path, codec: str) -> None:
    if not encoder_available(codec):
        pytest.skip(f"{codec} not in this PyAV build")
    root = make_dataset(tmp_path / "ds", episodes=2, frames=15, codec=codec)
    report = validate_dataset(root)
    assert report.ok, [str(p) for p in report.problems]
    assert (report.episodes, report.frames, report.videos_decoded) == (2, 30, 4)

    r = LeRobotReader(root)
    assert r.num_frames == 30 and r.num_episodes == 2
    info = r.info
    assert (
        info["features"]["observation.images.base"]["info"]["video.codec"]
        == {"libx264": "h264", "libsvtav1": "av1"}[codec]
    )
    for ep in range(2):
        a, b = r.episode_bounds(ep)
        cols = r.episode_columns(ep)
        np.testing.assert_array_equal(cols["frame_index"], np.arange(15))
        np.testing.assert_array_equal(cols["index"], np.arange(a, b))
        np.testing.assert_array_equal(cols["timestamp"], (np.arange(15) / FPS).astype(np.float32))
        for k in range(15):
            np.testing.assert_array_equal(cols["observation.state"][k], synthetic_joints(ep, k, 7, FPS))
            np.testing.assert_array_equal(cols["action"][k], synthetic_joints(ep, k + 1, 7, FPS))
        for ci, key in enumerate(r.camera_keys):
            decoded = r.decode_video(ep, key, cols["timestamp"])
            original = np.stack([synthetic_image(ci, ep, k, 48, 64) for k in range(15)])
            err = np.abs(decoded.astype(np.int16) - original.astype(np.int16))
            assert err.mean() < 6.0, f"{codec} {key} ep{ep}: mean abs error {err.mean():.2f}"
            # stored stats = LeRobot's formula on the original sampled frames
            stored = r.episodes_stats[ep]["stats"][key]
            fresh = image_stats_from_frames([original[i] for i in sample_indices(15)])
            for s in ("min", "max", "mean", "std", "count"):
                np.testing.assert_allclose(np.asarray(stored[s]), fresh[s], rtol=1e-12, atol=0)
        for key in ("observation.state", "action", "timestamp", "index", "task_index"):
            stored = r.episodes_stats[ep]["stats"][key]
            fresh = numeric_stats(cols[key])
            for s in ("min", "max", "mean", "std", "count"):
                np.testing.assert_allclose(np.asarray(stored[s]), fresh[s], rtol=1e-9, atol=1e-12)


def test_info_json_is_complete_and_ordered(golden: Path) -> None:
    info = json.loads((golden / "meta/info.json").read_text())
    assert list(info) == [
        "codebase_version",
        "robot_type",
        "total_episodes",
        "total_frames",
        "total_tasks",
        "total_videos",
        "total_chunks",
        "chunks_size",
        "fps",
        "splits",
        "data_path",
        "video_path",
        "features",
    ]
    assert (
        info["codebase_version"] == "v2.1"
        and info["total_videos"] == 4
        and info["splits"] == {"train": "0:2"}
    )
    assert list(info["features"])[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    vinfo = info["features"]["observation.images.wrist"]["info"]
    assert vinfo == {
        "video.height": 48,
        "video.width": 64,
        "video.codec": "h264",
        "video.pix_fmt": "yuv420p",
        "video.is_depth_map": False,
        "video.fps": 30,
        "video.channels": 3,
        "has_audio": False,
    }
    assert info["features"]["observation.state"]["names"] == list(JOINTS)
    tasks = [json.loads(line) for line in (golden / "meta/tasks.jsonl").read_text().splitlines()]
    assert tasks == [{"task_index": 0, "task": "pick up the can"}, {"task_index": 1, "task": "stack the can"}]
    eps = [json.loads(line) for line in (golden / "meta/episodes.jsonl").read_text().splitlines()]
    assert eps[1] == {"episode_index": 1, "tasks": ["stack the can"], "length": 12}


def test_parquet_schema_matches_lerobot(golden: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(golden / "data/chunk-000/episode_000001.parquet")
    assert t.column_names == [
        "observation.state",
        "action",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    ]
    typ = t.schema.field("observation.state").type
    assert pa.types.is_fixed_size_list(typ) and typ.list_size == 7 and typ.value_type == pa.float32()
    assert str(t.schema.field("timestamp").type) == "float"
    hf = json.loads(t.schema.metadata[b"huggingface"])
    assert hf["info"]["features"]["action"] == {
        "feature": {"dtype": "float32", "_type": "Value"},
        "length": 7,
        "_type": "Sequence",
    }
    assert t.column("index").to_pylist() == list(range(12, 24))
    assert set(t.column("task_index").to_pylist()) == {1}


def test_video_is_cfr_from_zero(golden: Path) -> None:
    p = golden / "videos/chunk-000/observation.images.base/episode_000000.mp4"
    pr = probe(p)
    assert pr.codec == "h264" and pr.pix_fmt == "yuv420p" and (pr.width, pr.height) == (64, 48)
    assert pr.duration_s == pytest.approx(12 / FPS, abs=1e-6)


def test_long_episode_samples_image_stats(tmp_path: Path) -> None:
    """Past 100 frames the image stats use a subsample: count = 100 and values from those frames."""
    feats = DatasetFeatures(("a",), ("a",), (CameraSpec("cam", 24, 32),))
    w = LeRobotWriter.create(tmp_path / "ds", FPS, feats, video=VideoSettings("libx264"))
    w.start_episode("t")
    frames = [synthetic_image(0, 0, k, 24, 32) for k in range(130)]
    for k, f in enumerate(frames):
        w.add_frame([k], [k], {"cam": f})
    w.save_episode()
    w.close()
    st = LeRobotReader(tmp_path / "ds").episodes_stats[0]["stats"]["observation.images.cam"]
    assert st["count"] == [100]
    fresh = image_stats_from_frames([frames[i] for i in sample_indices(130)])
    np.testing.assert_allclose(np.asarray(st["mean"]), fresh["mean"], rtol=1e-12)
    every = image_stats_from_frames(frames)
    assert not np.allclose(np.asarray(st["std"]), every["std"], rtol=1e-9)  # really a subsample
    assert validate_dataset(tmp_path / "ds").ok


def test_extra_column_round_trip(tmp_path: Path) -> None:
    feats = DatasetFeatures(JOINTS, JOINTS, (), (ExtraSpec("stamp_ns", "int64"),))
    with LeRobotWriter.create(tmp_path / "ds", 10, feats) as w:
        w.start_episode("no cameras")
        for k in range(5):
            w.add_frame(np.zeros(7), np.ones(7), {}, {"stamp_ns": [1_700_000_000_000_000_000 + k]})
        w.save_episode()
    info = json.loads((tmp_path / "ds/meta/info.json").read_text())
    assert info["video_path"] is None and info["total_videos"] == 0
    report = validate_dataset(tmp_path / "ds")
    assert report.ok, [str(p) for p in report.problems]
    r = LeRobotReader(tmp_path / "ds")
    assert r.frame(4, decode_images=False).extras["stamp_ns"] == 1_700_000_000_000_000_004

"""Reader: frames and action windows by global index, padding at the episode end, decode by timestamp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures.datasets import FPS
from recording.dataset.errors import DatasetError
from recording.dataset.reader import LeRobotReader
from recording.dataset.synth import synthetic_image, synthetic_joints


def test_window_inside_episode(golden: Path) -> None:
    r = LeRobotReader(golden)
    w = r.window(14, horizon=5)  # episode 1, frame 2
    assert (w.episode_index, w.frame_index, w.task) == (1, 2, "stack the can")
    np.testing.assert_array_equal(w.state, synthetic_joints(1, 2, 7, FPS))
    np.testing.assert_array_equal(
        w.actions, np.stack([synthetic_joints(1, k + 1, 7, FPS) for k in range(2, 7)])
    )
    assert not w.action_is_pad.any()
    assert w.timestamp == pytest.approx(2 / FPS)
    assert set(w.images) == {"observation.images.base", "observation.images.wrist"}
    err = np.abs(w.images["observation.images.base"].astype(int) - synthetic_image(0, 1, 2, 48, 64)).mean()
    assert err < 6


def test_window_padded_at_episode_end(golden: Path) -> None:
    r = LeRobotReader(golden)
    w = r.window(9, horizon=6, decode_images=False)  # episode 0 has frames 0..11 (global 0..11)
    assert w.action_is_pad.tolist() == [False, False, False, True, True, True]
    last = synthetic_joints(0, 12, 7, FPS)  # action of frame 11
    np.testing.assert_array_equal(w.actions[3:], np.stack([last] * 3))
    assert w.images == {}
    # never crosses into the next episode
    w = r.window(11, horizon=3, decode_images=False)
    assert w.action_is_pad.tolist() == [False, True, True]


def test_frame_and_bounds(golden: Path) -> None:
    r = LeRobotReader(golden)
    assert len(r) == 24 and r.episode_bounds(1) == (12, 24)
    f = r.frame(23)
    assert (f.episode_index, f.frame_index) == (1, 11)
    np.testing.assert_array_equal(f.state, synthetic_joints(1, 11, 7, FPS))
    assert f.images["observation.images.wrist"].shape == (48, 64, 3)
    with pytest.raises(IndexError):
        r.frame(24)
    with pytest.raises(ValueError, match="horizon"):
        r.window(0, 0)


def test_decode_by_timestamp(golden: Path) -> None:
    r = LeRobotReader(golden)
    frames = r.decode_video(0, "base", [5 / FPS, 0.0, 5 / FPS])
    assert frames.shape == (3, 48, 64, 3)
    np.testing.assert_array_equal(frames[0], frames[2])
    assert np.abs(frames[1].astype(int) - synthetic_image(0, 0, 0, 48, 64)).mean() < 6
    with pytest.raises(DatasetError, match="no frame within"):
        r.decode_video(0, "base", [0.5 / FPS])
    with pytest.raises(DatasetError, match="no frame within"):
        r.decode_video(0, "base", [12 / FPS])  # one past the end


def test_reader_reports_row_mismatch(dataset_copy: Path) -> None:
    import pyarrow.parquet as pq

    p = dataset_copy / "data/chunk-000/episode_000000.parquet"
    pq.write_table(pq.read_table(p).slice(0, 5), p)
    with pytest.raises(DatasetError, match=r"5 rows, episodes\.jsonl says 12"):
        LeRobotReader(dataset_copy)

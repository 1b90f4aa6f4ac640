"""Writer behaviour: input checks, discard, task bookkeeping, locking, reopen rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fixtures.datasets import FPS, make_dataset, small_features
from recording.dataset.errors import RecordingError
from recording.dataset.reader import LeRobotReader
from recording.dataset.synth import synthetic_image
from recording.dataset.validator import validate_dataset
from recording.dataset.video_settings import VideoSettings
from recording.dataset.writer import LeRobotWriter

IMG = synthetic_image(0, 0, 0, 48, 64)


def _frame(w: LeRobotWriter, k: int = 0) -> int:
    return w.add_frame(np.full(7, k, np.float32), np.full(7, k + 1, np.float32), {"base": IMG, "wrist": IMG})


@pytest.fixture
def writer(tmp_path: Path):
    w = LeRobotWriter.create(tmp_path / "ds", FPS, small_features(), video=VideoSettings("libx264"))
    yield w
    w.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"state": np.zeros(6)}, "state: expected 7 values"),
        ({"state": [0, 0, 0, np.nan, 0, 0, 0]}, "state: contains NaN"),
        ({"action": ["a"] * 7}, "action: not numeric"),
        ({"images": {"base": IMG}}, "missing image(s) for camera(s) ['wrist']"),
        ({"images": {"base": IMG, "wrist": IMG[:, :32]}}, "camera 'wrist': expected 48x64x3 uint8 RGB"),
        (
            {"images": {"base": IMG, "wrist": IMG.astype(np.float32)}},
            "camera 'wrist': expected 48x64x3 uint8",
        ),
        ({"images": {"base": IMG, "wrist": IMG, "top": IMG}}, "no camera 'top'"),
        ({"extras": {"stamp": [1]}}, "unknown extra feature(s) ['stamp']"),
    ],
)
def test_bad_frame_rejected_without_losing_the_episode(
    writer: LeRobotWriter, kwargs: dict, message: str
) -> None:
    writer.start_episode("t")
    _frame(writer, 0)
    args = {"state": np.zeros(7), "action": np.zeros(7), "images": {"base": IMG, "wrist": IMG}, **kwargs}
    with pytest.raises(ValueError) as exc:
        writer.add_frame(**args)
    assert message in str(exc.value)
    assert writer.episode_frames == 1
    _frame(writer, 1)
    assert writer.save_episode().length == 2
    assert validate_dataset(writer.root).ok


def test_full_camera_keys_accepted(writer: LeRobotWriter) -> None:
    writer.start_episode("t")
    writer.add_frame(
        np.zeros(7), np.zeros(7), {"observation.images.base": IMG, "observation.images.wrist": IMG}
    )
    assert writer.save_episode().length == 1


def test_state_machine_errors(writer: LeRobotWriter) -> None:
    with pytest.raises(RecordingError, match="no episode in progress"):
        _frame(writer)
    with pytest.raises(RecordingError, match="no episode in progress"):
        writer.save_episode()
    assert writer.discard_episode() is False
    writer.start_episode("t")
    with pytest.raises(RecordingError, match="still in progress"):
        writer.start_episode("t")
    with pytest.raises(RecordingError, match="has no frames"):
        writer.save_episode()
    assert writer.recording  # still open after the refused save
    writer.discard_episode()
    with pytest.raises(ValueError, match="task must be"):
        writer.start_episode("")
    assert not writer.recording


def test_discard_leaves_no_trace_and_task_not_added(writer: LeRobotWriter) -> None:
    writer.start_episode("keep")
    _frame(writer)
    writer.save_episode()
    assert writer.start_episode("thrown away") == 1
    for k in range(3):
        _frame(writer, k)
    assert writer.discard_episode() is True
    assert not (writer.root / ".staging").exists()
    assert writer.start_episode("keep") == 1
    _frame(writer)
    info = writer.save_episode()
    assert (info.episode_index, info.task_index, info.length) == (1, 0, 1)
    assert writer.tasks == ["keep"]
    assert json.loads((writer.root / "meta/info.json").read_text())["total_tasks"] == 1
    assert validate_dataset(writer.root).ok


def test_second_writer_is_refused(writer: LeRobotWriter) -> None:
    with pytest.raises(RecordingError, match="open in another writer"):
        LeRobotWriter.open(writer.root)
    writer.close()
    assert not (writer.root / ".evo1_writer.lock").exists()  # nothing of ours left to upload
    again = LeRobotWriter.open(writer.root)
    assert (writer.root / ".evo1_writer.lock").exists()
    with pytest.raises(RecordingError, match="open in another writer"):
        LeRobotWriter.open(writer.root)
    again.close()
    assert not (writer.root / ".evo1_writer.lock").exists()


def test_create_refuses_non_empty_dir(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("hi")
    with pytest.raises(RecordingError, match="already exists and is not empty"):
        LeRobotWriter.create(tmp_path / "x", FPS, small_features())


@pytest.mark.parametrize("fps", [0, -3, 29.97])
def test_create_refuses_bad_fps(tmp_path: Path, fps: float) -> None:
    with pytest.raises(ValueError, match="fps must be a positive integer"):
        LeRobotWriter.create(tmp_path / "x", fps, small_features())  # type: ignore[arg-type]


def test_reopen_appends_with_same_codec_only(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", episodes=1, frames=5)
    with pytest.raises(RecordingError, match="dataset videos are h264"):
        LeRobotWriter.open(root, video=VideoSettings("libsvtav1"))
    with LeRobotWriter.open(root) as w:
        assert w.video_settings.encoder() == "libx264"
        assert (w.num_episodes, w.total_frames, w.tasks) == (1, 5, ["pick up the can"])
        w.start_episode("pick up the can")
        _frame(w)
        w.save_episode()
    r = LeRobotReader(root)
    assert r.column("index").tolist() == list(range(6))
    assert validate_dataset(root).ok


def test_open_non_dataset(tmp_path: Path) -> None:
    from recording.dataset.errors import DatasetError

    with pytest.raises(DatasetError, match="not a dataset"):
        LeRobotWriter.open(tmp_path)


def test_close_discards_unsaved_episode(writer: LeRobotWriter) -> None:
    writer.start_episode("t")
    _frame(writer)
    writer.close()
    assert not (writer.root / ".staging").exists()
    with pytest.raises(RecordingError, match="writer is closed"):
        writer.start_episode("t")
    assert json.loads((writer.root / "meta/info.json").read_text())["total_episodes"] == 0


def test_encoder_buffer_cap_refuses_frames(tmp_path: Path) -> None:
    """A codec too slow for the cameras gives a clear error instead of unbounded memory growth."""
    with LeRobotWriter.create(
        tmp_path / "ds", FPS, small_features(), video=VideoSettings("libx264"), max_buffer_mb=0.001
    ) as w:
        w.start_episode("t")
        with pytest.raises(RecordingError, match=r"frame refused\. Use a faster codec"):
            _frame(w)
        assert w.episode_frames == 0
    with pytest.raises(ValueError, match="max_buffer_mb must be positive"):
        LeRobotWriter.create(tmp_path / "other", FPS, small_features(), max_buffer_mb=0)
    assert not (tmp_path / "other").exists()


@pytest.mark.timeout(60)
def test_add_frame_never_waits_for_the_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every encoder thread stuck, add_frame still returns; frames queue up and are encoded later."""
    import threading

    import recording.dataset.video_encoder as venc

    gate = threading.Event()
    real = venc.image_frame_stats

    def stuck(frame: np.ndarray):
        gate.wait()
        return real(frame)

    monkeypatch.setattr(venc, "image_frame_stats", stuck)
    with LeRobotWriter.create(tmp_path / "ds", FPS, small_features(), video=VideoSettings("libx264")) as w:
        w.start_episode("t")
        for k in range(6):
            assert _frame(w, k) == k  # would hang here if add_frame waited for encoding
        assert w.encoder_backlog >= 5  # the first frame may already sit inside the stuck call
        gate.set()
        info = w.save_episode()
    assert info.length == 6
    assert validate_dataset(tmp_path / "ds").ok

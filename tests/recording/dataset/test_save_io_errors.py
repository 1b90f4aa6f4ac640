"""An I/O error at every step of save_episode leaves a readable, consistent dataset (issue 13 item 10).

Each run fails exactly one of the file-system calls save_episode makes (fsync, rename, replace, in
order) with EIO, then checks: before the commit point (info.json replaced) the episode is lost and the
message says the saved episodes are intact; after it the episode stays in the dataset (never rolled
back under the new info.json) and the writer reports that its durability was not confirmed. Either
way the dataset reopens and validates, and the writer can record the next episode.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from fixtures.datasets import small_features
from recording.dataset import layout
from recording.dataset.errors import RecordingError
from recording.dataset.synth import synthetic_image
from recording.dataset.validator import validate_dataset
from recording.dataset.video_settings import VideoSettings
from recording.dataset.writer import LeRobotWriter

CALLS = ("fsync", "rename", "replace")


class FailNth:
    """Fail the n-th (1-based) fsync/rename/replace made by this thread; pass every other call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, n: int) -> None:
        self.n, self.count, self.failed = n, 0, None
        self.thread = threading.get_ident()
        for name in CALLS:
            monkeypatch.setattr(os, name, self._wrap(name, getattr(os, name)))

    def _wrap(self, name, real):
        def call(*args, **kwargs):
            if threading.get_ident() == self.thread:
                self.count += 1
                if self.count == self.n:
                    self.failed = name
                    raise OSError(errno.EIO, f"injected I/O error in os.{name}")
            return real(*args, **kwargs)

        return call


def _record(w: LeRobotWriter, task: str, frames: int = 3) -> None:
    w.start_episode(task)
    for k in range(frames):
        img = synthetic_image(0, w.num_episodes, k, 48, 64)
        w.add_frame(np.full(7, k), np.full(7, k), {"base": img, "wrist": img})


def _consistent(root: Path) -> int:
    """The dataset reopens, validates, and its JSONL files agree with info.json; returns episodes."""
    info = json.loads((root / layout.INFO_PATH).read_text())
    n = info["total_episodes"]
    for rel in (layout.EPISODES_PATH, layout.EPISODES_STATS_PATH):
        assert len((root / rel).read_text().splitlines()) == n, rel
    report = validate_dataset(root, decode_videos=False)
    assert report.ok, report
    with LeRobotWriter.open(root) as w:
        assert w.num_episodes == n
    return n


def test_io_error_at_each_save_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ds"
    video = VideoSettings("libx264")
    with LeRobotWriter.create(root, 30, small_features(), video=video) as w:
        _record(w, "first")
        w.save_episode()
    outcomes: list[tuple[str | None, bool]] = []
    n = 0
    while True:
        n += 1
        assert n < 60, "save_episode makes more file-system calls than expected"
        before = _consistent(root)
        with LeRobotWriter.open(root) as w:
            _record(w, f"task {n}")
            with monkeypatch.context() as mp:
                inject = FailNth(mp, n)
                try:
                    info = w.save_episode()
                except RecordingError as e:
                    error: RecordingError | None = e
                else:
                    error = None
            in_writer = w.num_episodes
        after = _consistent(root)
        assert in_writer == after  # the writer agreed with the disk
        if inject.failed is None:  # past the last call: nothing was injected
            assert error is None and after == before + 1
            break
        outcomes.append((inject.failed, error is None))
        if error is not None:  # failed before the commit point: rolled back, message says so
            assert after == before, (inject.failed, n)
            assert f"the {before} saved episode(s) are intact" in str(error)
            assert "injected I/O error" in str(error)
        else:  # after the commit point: the episode stays, with a warning about durability
            assert after == before + 1, (inject.failed, n)
            assert "injected I/O error" in info.warning and "power" in info.warning
        with LeRobotWriter.open(root) as w:  # the dataset takes the next episode
            _record(w, "next")
            w.save_episode()
        assert _consistent(root) == after + 1
    # both sides of the commit point were exercised
    assert any(committed for _, committed in outcomes), outcomes
    assert any(not committed for _, committed in outcomes), outcomes

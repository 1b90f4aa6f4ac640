"""Disk full while recording or saving: a clear DiskFullError, earlier episodes intact, writer reusable."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import recording.dataset.writer as wmod
from fixtures.datasets import FPS, small_features
from recording.dataset.errors import DiskFullError
from recording.dataset.synth import synthetic_image
from recording.dataset.validator import validate_dataset
from recording.dataset.video_settings import VideoSettings
from recording.dataset.writer import LeRobotWriter


def _smooth(w: LeRobotWriter, e: int, n: int) -> None:
    for k in range(n):
        img = synthetic_image(0, e, k, 48, 64)
        w.add_frame(np.full(7, k), np.full(7, k), {"base": img, "wrist": img})


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 512 KiB tmpfs (we run as root in CI); skipped where mounting is not permitted."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the monkeypatched ENOSPC test covers the logic")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_disk(small_tmpfs: Path) -> None:
    root = small_tmpfs / "ds"
    w = LeRobotWriter.create(root, FPS, small_features(), video=VideoSettings("libx264", crf=0))
    w.start_episode("fits")
    _smooth(w, 0, 5)
    w.save_episode()
    # random noise at crf 0 does not compress: the disk fills while encoding or saving
    rng = np.random.default_rng(0)
    w.start_episode("does not fit")
    with pytest.raises(DiskFullError) as exc:
        for _ in range(2000):
            noise = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            w.add_frame(np.zeros(7), np.zeros(7), {"base": noise, "wrist": noise})
        w.save_episode()
    assert "no space left on device" in str(exc.value)
    assert str(root) in str(exc.value)
    w.discard_episode()
    assert not (root / ".staging").exists()  # the space is given back
    report = validate_dataset(root)
    assert report.ok and report.episodes == 1, [str(p) for p in report.problems]
    # the writer is still usable once there is room again
    w.start_episode("fits")
    _smooth(w, 1, 3)
    w.save_episode()
    w.close()
    assert validate_dataset(root).episodes == 2


@pytest.mark.parametrize("step", ["parquet", "episodes.jsonl", "info.json"])
def test_enospc_during_commit_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """ENOSPC simulated at the lowest write of each commit step (portable: no mount needed)."""
    root = tmp_path / "ds"
    w = LeRobotWriter.create(root, FPS, small_features(), video=VideoSettings("libx264"))
    w.start_episode("first")
    _smooth(w, 0, 6)
    w.save_episode()
    before = {p: p.read_bytes() for p in (root / "meta").iterdir()}

    def enospc(path: Path, *a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    if step == "parquet":
        monkeypatch.setattr(wmod, "write_episode_parquet", enospc)
    elif step == "episodes.jsonl":
        real = wmod.append_durable

        def append(path: Path, data: bytes) -> int:
            if path.name == "episodes.jsonl":
                enospc(path)
            return real(path, data)

        monkeypatch.setattr(wmod, "append_durable", append)
    else:
        monkeypatch.setattr(wmod, "write_json_atomic", enospc)
    w.start_episode("second")
    _smooth(w, 1, 6)
    with pytest.raises(
        DiskFullError, match="no space left on device while saving episode 1; it is lost, the 1 saved episode"
    ):
        w.save_episode()
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in (root / "meta").iterdir()} == before
    assert not (root / "data/chunk-000/episode_000001.parquet").exists()
    assert not w.recording
    report = validate_dataset(root)
    assert report.ok and report.episodes == 1, [str(p) for p in report.problems]
    w.start_episode("second")
    _smooth(w, 1, 4)
    assert w.save_episode().episode_index == 1
    w.close()
    assert validate_dataset(root).episodes == 2

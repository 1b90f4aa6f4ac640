"""A writer killed with SIGKILL loses at most the episode in progress; reopening resumes after the last one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from fixtures.datasets import FPS
from recording.dataset.reader import LeRobotReader
from recording.dataset.synth import synthetic_image
from recording.dataset.validator import validate_dataset
from recording.dataset.writer import LeRobotWriter

REPO = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent("""
    import sys, time, os, signal
    import numpy as np
    sys.path.insert(0, {repo!r})
    from fixtures.datasets import small_features
    from recording.dataset.synth import synthetic_image, synthetic_joints
    from recording.dataset.video_settings import VideoSettings
    from recording.dataset.writer import LeRobotWriter
    import recording.dataset.writer as wmod

    mode = {mode!r}
    w = LeRobotWriter.create({root!r}, {fps}, small_features(), video=VideoSettings("libx264"))
    def episode(e, n):
        w.start_episode("task %d" % e)
        for k in range(n):
            imgs = {{c.name: synthetic_image(i, e, k, 48, 64) for i, c in enumerate(small_features().cameras)}}
            w.add_frame(synthetic_joints(e, k, 7, {fps}), synthetic_joints(e, k + 1, 7, {fps}), imgs)
    for e in range(2):
        episode(e, 10)
        w.save_episode()
    if mode == "record":
        episode(2, 25)
        # be killed while the episode's video is being written (the encoder thread opens it lazily)
        from pathlib import Path
        deadline = time.time() + 30
        while not any(Path({root!r}, ".staging").rglob("*.mp4")) and time.time() < deadline:
            time.sleep(0.01)
        print("READY", flush=True)
        time.sleep(60)
    else:
        # die inside the commit of episode 2, at the step named by mode
        real_append, real_info = wmod.append_durable, wmod.write_json_atomic
        def append(path, data):
            if mode == "partial-line" and path.name == "episodes.jsonl":
                with open(path, "ab") as f:
                    f.write(data[: len(data) // 2]); f.flush(); os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
            return real_append(path, data)
        def info(path, obj, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        wmod.append_durable, wmod.write_json_atomic = append, info
        episode(2, 8)
        w.save_episode()
""")


def _run_child(tmp_path: Path, mode: str) -> Path:
    root = tmp_path / "ds"
    code = CHILD.format(repo=str(Path(__file__).resolve().parents[2]), mode=mode, root=str(root), fps=FPS)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    if mode == "record":
        line = proc.stdout.readline()
        assert line.strip() == "READY", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    return root


def _record_third(root: Path) -> None:
    with LeRobotWriter.open(root) as w:
        assert not (root / ".staging").exists()  # leftovers cleaned on reopen
        assert w.num_episodes == 2 and w.start_episode("task 2") == 2
        for k in range(7):
            img = synthetic_image(0, 2, k, 48, 64)
            w.add_frame([k] * 7, [k] * 7, {"base": img, "wrist": img})
        w.save_episode()


def test_sigkill_mid_episode_keeps_saved_episodes(tmp_path: Path) -> None:
    root = _run_child(tmp_path, "record")
    assert any((root / ".staging").rglob("*.mp4"))  # the killed episode was being encoded
    report = validate_dataset(root)
    assert report.ok, [str(p) for p in report.problems]
    assert report.episodes == 2 and report.frames == 20
    _record_third(root)
    report = validate_dataset(root)
    assert report.ok, [str(p) for p in report.problems]
    assert report.episodes == 3 and report.frames == 27
    assert LeRobotReader(root).column("index").tolist() == list(range(27))


def test_sigkill_before_info_commit_rolls_back_on_reopen(tmp_path: Path) -> None:
    """Killed after the files were moved and the JSONL appended, before info.json: episode 2 never happened."""
    root = _run_child(tmp_path, "before-info")
    assert (root / "data/chunk-000/episode_000002.parquet").exists()
    assert not validate_dataset(root).ok  # orphans are visible until the dataset is reopened
    LeRobotWriter.open(root).close()
    assert not (root / "data/chunk-000/episode_000002.parquet").exists()
    report = validate_dataset(root)
    assert report.ok and report.episodes == 2, [str(p) for p in report.problems]
    _record_third(root)
    assert validate_dataset(root).ok


def test_sigkill_with_partial_jsonl_line(tmp_path: Path) -> None:
    root = _run_child(tmp_path, "partial-line")
    assert not (root / "meta/episodes.jsonl").read_bytes().endswith(b"\n")
    _record_third(root)
    report = validate_dataset(root)
    assert report.ok and report.episodes == 3, [str(p) for p in report.problems]

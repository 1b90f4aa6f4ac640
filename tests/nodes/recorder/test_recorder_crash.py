"""Crash safety: SIGKILL of a real recorder process mid-episode, restart, and a full disk."""

from __future__ import annotations

import errno
import signal
import subprocess
from pathlib import Path

import pytest
from std_srvs.srv import Trigger

from evo1_msgs.msg import RecorderStatus
from evo1_msgs.srv import StartEpisode
from evo1_ros.nodes.recorder import RecorderNode
from evo1_ros.polling import wait_until
from fixtures.datasets import write_features
from fixtures.recorder import RECORDER_EXE, Rig, answered, as_overrides, as_ros_args, recorder_params
from fixtures.ros import Collector, call
from recording.dataset.reader import LeRobotReader
from recording.dataset.validator import validate_dataset

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[3]


def has(status: Collector, pred) -> bool:
    last = status.last()
    return last is not None and bool(pred(last))


def record_frames(client, status: Collector, episode: int, frames: int = 10, task: str = "") -> None:
    res = call(client, StartEpisode, "/recorder/start_episode", StartEpisode.Request(task=task))
    assert res.success, res.message
    assert res.episode_index == episode
    assert wait_until(
        lambda: has(
            status,
            lambda s: (
                s.state == RecorderStatus.RECORDING
                and s.episode_index == episode
                and s.frames_recorded >= frames
            ),
        ),
        30,
    ), status.last()


def test_sigkill_mid_episode_keeps_saved_episodes_and_restart_resumes(ros, spawn, tmp_path):
    ds = tmp_path / "ds"
    params = recorder_params(ds, write_features(tmp_path / "features.yaml"))
    client = ros.node("test_client")
    Rig(ros.node("rig"))
    status = Collector(client, RecorderStatus, "/recorder/status")
    # the shipped params file first (it must load), then the test's values (the last one wins)
    argv = [RECORDER_EXE, *as_ros_args(params)]
    argv[1:1] = ["--ros-args", "--params-file", str(REPO / "config" / "recorder.yaml")]
    rec = spawn(argv, name="recorder")
    assert rec.wait_for_output(r"created dataset", 30), rec.output()

    for ep in range(2):
        record_frames(client, status, ep)
        res = call(client, Trigger, "/recorder/save_episode")
        assert res.success, res.message
    record_frames(client, status, 2, frames=15)
    rec.send_signal(signal.SIGKILL)
    rec.proc.wait(timeout=10)
    assert rec.proc.returncode == -signal.SIGKILL

    report = validate_dataset(ds)
    assert report.ok, [str(p) for p in report.problems]
    assert report.episodes == 2

    rec2 = spawn(argv, name="recorder2")
    assert rec2.wait_for_output(r"appending to dataset .*\(2 episode\(s\) saved", 30), rec2.output()
    # discarding when nothing records is refused harmlessly: proves the new server answers
    assert answered(client, Trigger, "/recorder/discard_episode")
    record_frames(client, status, 2)
    res = call(client, Trigger, "/recorder/save_episode")
    assert res.success, res.message
    assert not (ds / ".staging").exists()
    report = validate_dataset(ds)
    assert report.ok, [str(p) for p in report.problems]
    assert report.episodes == 3
    assert rec2.stop() == 0


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 3 MiB tmpfs (needs root); skipped where mounting is not allowed."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> None:
    """Write zeros until the file system is full."""
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    with open(path, "ab", buffering=0) as f:  # the last partial chunk
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


def test_full_disk_reports_error_and_keeps_saved_episodes(ros, small_fs, tmp_path):
    ds = small_fs / "ds"
    params = recorder_params(ds, write_features(tmp_path / "features.yaml"))
    client = ros.node("test_client")
    Rig(ros.node("rig"))
    node = ros.add(RecorderNode(context=ros.context, parameter_overrides=as_overrides(params)))
    try:
        status = Collector(client, RecorderStatus, "/recorder/status")
        assert wait_until(lambda: has(status, lambda s: min(s.stream_ages) >= 0), 15)
        record_frames(client, status, 0)
        assert call(client, Trigger, "/recorder/save_episode").success

        filler = small_fs / "filler.bin"
        fill(filler)
        res = call(client, StartEpisode, "/recorder/start_episode", StartEpisode.Request(task=""))
        if res.success:  # the staging folder fitted; the video/parquet writes will not
            wait_until(
                lambda: has(
                    status,
                    lambda s: (
                        s.state == RecorderStatus.ERROR or (s.episode_index == 1 and s.frames_recorded >= 10)
                    ),
                ),
                20,
            )
            saved = call(client, Trigger, "/recorder/save_episode")
            assert not saved.success
            message = saved.message
        else:
            message = res.message
        assert "no space left" in message, message
        assert wait_until(lambda: has(status, lambda s: s.state == RecorderStatus.ERROR), 5), status.last()
        assert "no space left" in status.last().error

        filler.unlink()
        report = validate_dataset(ds)
        assert report.ok, [str(p) for p in report.problems]
        assert report.episodes == 1
        # with space again, recording works and ERROR clears
        record_frames(client, status, 1)
        assert call(client, Trigger, "/recorder/save_episode").success
        assert LeRobotReader(ds).num_episodes == 2
        assert validate_dataset(ds).ok
    finally:
        node.close()

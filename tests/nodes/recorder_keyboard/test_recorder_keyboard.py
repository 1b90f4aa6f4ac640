"""The terminal front-end, driven through piped stdin lines against a real recorder node."""

from __future__ import annotations

import subprocess

import pytest

from evo1_msgs.msg import RecorderStatus
from evo1_ros.nodes.recorder import RecorderNode
from evo1_ros.nodes.recorder_keyboard import Command, format_status, key_command, parse_command
from evo1_ros.polling import wait_until
from fixtures.datasets import write_features
from fixtures.recorder import KEYBOARD_EXE, Rig, as_overrides, recorder_params
from fixtures.ros import Collector
from recording.dataset.reader import LeRobotReader
from recording.dataset.validator import validate_dataset


def test_parse_lines_and_keys():
    assert parse_command("s\n") == Command("start")
    assert parse_command("s stack the red cube\n") == Command("start", "stack the red cube")
    assert parse_command("\n") == Command("save")
    assert parse_command("w") == Command("save")
    assert parse_command("d") == Command("discard")
    assert parse_command("q") == Command("quit")
    assert parse_command("x").kind == "help"
    assert key_command("\r") == Command("save")
    assert key_command("S") == Command("start")
    assert key_command("z") is None


def test_format_status_shows_error_and_missing_streams():
    msg = RecorderStatus(
        state=RecorderStatus.ERROR,
        episode_index=3,
        episodes_saved=3,
        error="disk full",
        stream_names=["/a", "/b"],
        stream_ages=[0.1, -1.0],
        episode_time_limit=60.0,
    )
    text = format_status(msg)
    assert text.startswith("[ERROR] episode 3 (3 saved)")
    assert "no data yet: /b" in text and "error: disk full" in text and "/60 s" in text


@pytest.mark.ros
def test_piped_keyboard_saves_an_episode(ros, ros_env, tmp_path):
    ds = tmp_path / "ds"
    params = recorder_params(ds, write_features(tmp_path / "features.yaml"))
    watcher = ros.node("watcher")
    Rig(ros.node("rig"))
    node = ros.add(RecorderNode(context=ros.context, parameter_overrides=as_overrides(params)))
    status = Collector(watcher, RecorderStatus, "/recorder/status")
    out = tmp_path / "keyboard.log"
    with open(out, "w") as log:
        kb = subprocess.Popen(
            [KEYBOARD_EXE, "--timeout", "60"],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**ros_env, "PATH": "/usr/bin:/bin"},
        )
        try:
            kb.stdin.write("s stack the red cube\n")
            kb.stdin.flush()
            assert wait_until(
                lambda: (
                    (s := status.last()) is not None
                    and s.state == RecorderStatus.RECORDING
                    and s.frames_recorded >= 10
                ),
                30,
            ), out.read_text()
            kb.stdin.write("w\n")
            kb.stdin.flush()
            assert wait_until(lambda: "OK: saved episode 0" in out.read_text(), 30), out.read_text()
            kb.stdin.write("d\nq\n")
            kb.stdin.flush()
            assert kb.wait(timeout=20) == 0
        finally:
            if kb.poll() is None:
                kb.kill()
            node.close()
    text = out.read_text()
    assert "OK: recording episode 0: 'stack the red cube'" in text
    assert "FAILED: cannot discard: no episode is recording" in text
    assert "[IDLE] episode 1 (1 saved)" in text
    report = validate_dataset(ds)
    assert report.ok and report.episodes == 1, [str(p) for p in report.problems]
    assert LeRobotReader(ds).tasks == {0: "stack the red cube"}

"""`evo1 bag` on files, no ROS graph: bad bags fail in one line, to-lerobot writes valid datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from evo1_ros.cli.main import main
from fixtures.bags import converter_params, write_teleop_bag
from fixtures.datasets import write_features
from recording.bag.bagio import BagError, open_bag
from recording.bag.to_lerobot import ConvertOptions, convert
from recording.dataset.reader import LeRobotReader
from recording.dataset.validator import validate_dataset


@pytest.fixture(scope="module")
def teleop_bag(tmp_path_factory) -> Path:
    return write_teleop_bag(tmp_path_factory.mktemp("bags") / "teleop")


def _one_line_error(capsys, argv: list[str], expect: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert expect in err, err


def test_metadata_is_rosbag2_v9_with_type_hashes(teleop_bag):
    meta = yaml.safe_load((teleop_bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9
    assert meta["storage_identifier"] == "mcap"
    for t in meta["topics_with_message_count"]:
        assert t["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
        assert t["topic_metadata"]["offered_qos_profiles"]


def test_bad_bags_fail_in_one_line(tmp_path, teleop_bag, capsys):
    features = write_features(tmp_path / "f.yaml", fps=10)
    base = ["bag", "to-lerobot", "-o", str(tmp_path / "ds"), "-p", f"features_file:={features}"]
    base += ["-p", "cameras:=[cam0, cam1]", "-p", "image_width:=64", "-p", "image_height:=48", "--task", "t"]
    _one_line_error(capsys, [*base, str(tmp_path / "nope")], "no such bag")

    empty = tmp_path / "empty"
    from recording.bag.bagio import BagWriter

    BagWriter(empty).new_file()
    from recording.bag.bagio import QosSpec

    w = BagWriter(tmp_path / "empty2")
    w.add_topic("/x", "std_msgs/msg/String", QosSpec())
    w.new_file()
    w.close()
    _one_line_error(capsys, [*base, str(tmp_path / "empty2")], "has no messages")

    corrupt = tmp_path / "corrupt"
    shutil.copytree(teleop_bag, corrupt)
    data = corrupt / "corrupt.mcap"
    (corrupt / "teleop.mcap").rename(data)
    text = (corrupt / "metadata.yaml").read_text().replace("teleop.mcap", "corrupt.mcap")
    (corrupt / "metadata.yaml").write_text(text)
    raw = data.read_bytes()  # header kept, the rest overwritten (e.g. a disk error)
    data.write_bytes(raw[:64] + bytes((i * 37) % 251 for i in range(len(raw) - 64)))
    _one_line_error(capsys, [*base, str(corrupt)], "corrupt")

    truncated = tmp_path / "truncated"
    shutil.copytree(teleop_bag, truncated)
    f = truncated / "teleop.mcap"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    _one_line_error(capsys, [*base, str(truncated)], "truncated")

    _one_line_error(capsys, [*base, str(teleop_bag), "-p", "joint_states_topic:=/nope"], "/nope")
    _one_line_error(capsys, ["bag", "play", str(teleop_bag), "--topics", "/nope"], "/nope")
    assert not (tmp_path / "ds" / "meta").exists() or validate_dataset(tmp_path / "ds").ok


def test_unknown_topic_select(teleop_bag):
    with open_bag(teleop_bag) as bag, pytest.raises(BagError, match=r"\['/missing'\] not in the bag"):
        bag.select(["/missing"])


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_to_lerobot_valid_and_rows_from_the_stream(tmp_path, storage):
    bag = write_teleop_bag(tmp_path / "b", storage=storage, seconds=1.5)
    features = write_features(tmp_path / "f.yaml", fps=10)
    report = convert(
        [bag], tmp_path / "ds", ConvertOptions(converter_params(features), task="pick_place_can")
    )
    assert report.episodes == [0]
    result = validate_dataset(tmp_path / "ds")
    assert result.ok, [str(p) for p in result.problems]
    reader = LeRobotReader(tmp_path / "ds")
    cols = reader.episode_columns(0)
    n = reader.episode_length(0)
    assert n == report.frames == 14  # ticks at 1000.1 .. 1001.4 s (first tick has no data yet)
    # the state changes every 0.1 s and the frame ticks at 10 fps: every frame a new state
    assert np.allclose(np.diff(cols["observation.state"][:, 0]), 0.01, atol=1e-6)
    # action = the accepted target (state + 0.05) of the trajectory in force at the tick
    assert np.allclose(cols["action"] - cols["observation.state"], 0.05, atol=1e-5)
    assert reader.tasks == {0: "pick up the can and place it on the plate"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"stamp_source": "arrival"}, "'stamp_source'='arrival' must be one of"),
        ({"fps": 0}, "'fps'=0 is below its minimum 1"),
        ({"camera_max_age": -0.1}, "'camera_max_age'=-0.1 is below its minimum 0.0"),
    ],
)
def test_to_lerobot_judges_the_parameters_by_the_recorder_node_declarations(tmp_path, override, message):
    bag = write_teleop_bag(tmp_path / "b", seconds=0.5)
    features = write_features(tmp_path / "f.yaml", fps=10)
    with pytest.raises(BagError, match=message):
        convert([bag], tmp_path / "ds", ConvertOptions(converter_params(features, **override), task="t"))
    assert not (tmp_path / "ds").exists()  # refused before anything was written


def test_split_bags_are_episodes(tmp_path):
    """A bag split by duration is a folder of complete bags; to-lerobot makes one episode per file."""
    from recording.bag.bagio import BagWriter, SplitPolicy, qos_from_connection

    src = write_teleop_bag(tmp_path / "src", seconds=2.0)
    w = BagWriter(tmp_path / "split", split=SplitPolicy(max_seconds=1.0))
    with open_bag(src) as bag:
        for c in bag.connections:
            w.add_topic(c.topic, c.msgtype, qos_from_connection(c))
        for c, t, raw in bag.messages(bag.connections):
            w.write(c.topic, t, raw)
    w.close()
    assert [p.name for p in w.paths] == ["split_0", "split_1"]
    features = write_features(tmp_path / "f.yaml", fps=10)
    report = convert(
        [tmp_path / "split"], tmp_path / "ds", ConvertOptions(converter_params(features), task="t")
    )
    assert report.episodes == [0, 1]
    assert validate_dataset(tmp_path / "ds").ok


def test_episodes_from_recorder_events(tmp_path):
    """--episodes events: one episode per RECORDING span of /recorder/status, task from the status."""
    bag = write_teleop_bag(
        tmp_path / "b", seconds=3.0, episodes=[(0.3, 1.2, "stack the cans"), (1.9, 2.8, "wipe the table")]
    )
    features = write_features(tmp_path / "f.yaml", fps=10)
    report = convert([bag], tmp_path / "ds", ConvertOptions(converter_params(features), episodes="events"))
    assert report.episodes == [0, 1]
    assert validate_dataset(tmp_path / "ds").ok
    reader = LeRobotReader(tmp_path / "ds")
    assert sorted(reader.tasks.values()) == ["stack the cans", "wipe the table"]
    # status at 5 Hz: RECORDING from 0.405 to 1.205 s and 2.005 to 2.805 s -> ticks 0.5..1.2, 2.1..2.8
    assert [reader.episode_length(e) for e in (0, 1)] == [8, 8]
    state = reader.episode_columns(1)["observation.state"][:, 0]
    assert state[0] == pytest.approx(0.20, abs=1e-6)  # the joint state in force at the 2.1 s tick


def test_bag_cli_imports_neither_rclpy_nor_torch(tmp_path):
    """`evo1 bag --help` and a whole `to-lerobot` run stay free of rclpy and torch (fast, no ROS needed)."""
    import subprocess
    import sys

    bag = write_teleop_bag(tmp_path / "b", seconds=0.5)
    features = write_features(tmp_path / "f.yaml", fps=10)
    code = (
        "import sys\n"
        "from evo1_ros.cli.main import main\n"
        "try:\n    main(['bag', '--help'])\nexcept SystemExit:\n    pass\n"
        f"rc = main(['bag', 'to-lerobot', {str(bag)!r}, '-o', {str(tmp_path / 'ds')!r}, '--task', 't',"
        f" '-p', 'features_file:={features}', '-p', 'cameras:=[cam0, cam1]', '-p', 'image_width:=64',"
        " '-p', 'image_height:=48', '-p', 'fps:=10'])\n"
        "print('RC', rc, [m for m in ('rclpy', 'torch') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "RC 0 []" in out, out

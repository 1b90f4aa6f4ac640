"""The recorder node with real topics: synthetic publishers in-process, a real dataset on disk."""

from __future__ import annotations

import time

import numpy as np
import pytest
from std_srvs.srv import Trigger

from evo1_msgs.msg import RecorderStatus
from evo1_msgs.srv import StartEpisode
from evo1_ros.nodes.recorder import RecorderNode
from evo1_ros.polling import wait_until
from fixtures.datasets import CAMERAS, JOINTS, write_features
from fixtures.recorder import COLORS, Rig, as_overrides, recorder_params, rows_match
from fixtures.ros import Collector, call
from recording.dataset.reader import LeRobotReader
from recording.dataset.validator import validate_dataset

pytestmark = pytest.mark.ros


def start(node, task: str = "") -> StartEpisode.Response:
    return call(node, StartEpisode, "/recorder/start_episode", StartEpisode.Request(task=task))


def has(status: Collector, pred) -> bool:
    last = status.last()
    return last is not None and bool(pred(last))


def wait_frames(status: Collector, n: int, timeout: float = 20.0) -> RecorderStatus:
    assert wait_until(lambda: status.last() is not None and status.last().frames_recorded >= n, timeout), (
        f"fewer than {n} frames recorded: {status.last()}"
    )
    return status.last()


def test_frames_in_rows_out_with_published_values(ros, make_recorder, tmp_path):
    client = ros.node("test_client")
    rig = Rig(ros.node("rig"))
    # Generous max ages: this test is about values, and a loaded CI machine can starve the publishers
    # for a few hundred ms; staleness has its own test below.
    make_recorder(camera_max_age=2.0, state_max_age=2.0)
    status = Collector(client, RecorderStatus, "/recorder/status")
    assert wait_until(lambda: status.last() is not None and min(status.last().stream_ages) >= 0, 15)

    res = start(client, "pick_place_can")
    assert res.success, res.message
    assert res.episode_index == 0
    wait_frames(status, 25)
    saved = call(client, Trigger, "/recorder/save_episode")
    assert saved.success, saved.message
    last = status.last()

    report = validate_dataset(tmp_path / "ds")
    assert report.ok, [str(p) for p in report.problems]
    reader = LeRobotReader(tmp_path / "ds")
    assert reader.num_episodes == 1
    n = reader.episode_length(0)
    assert f"({n} frames" in saved.message
    assert n >= 25
    # the task id was resolved through the catalogue to its prompt
    assert reader.tasks == {0: "pick up the can and place it on the plate"}
    cols = reader.episode_columns(0)
    assert rows_match(cols["observation.state"], rig.states)
    assert rows_match(cols["action"], rig.commands)
    # samples move forward in time: state values increase monotonically with the publish counter
    assert np.all(np.diff(cols["observation.state"][:, 0]) >= 0)
    # cameras are not mixed up: decoded colours are close to the published ones
    for cam in CAMERAS:
        frames = reader.decode_video(0, cam, [0.0, (n - 1) / 30])
        assert np.allclose(frames.reshape(-1, 3).mean(axis=0), COLORS[cam], atol=12)
    assert wait_until(
        lambda: status.last().episodes_saved == 1 and status.last().state == RecorderStatus.IDLE, 5
    )
    assert last.frames_dropped == 0


def test_stale_camera_drops_and_counts_frames(ros, make_recorder, tmp_path):
    client = ros.node("test_client")
    rig = Rig(ros.node("rig"))
    make_recorder()
    status = Collector(client, RecorderStatus, "/recorder/status")
    assert start(client, "wipe the table").success
    wait_frames(status, 10)
    rig.enabled["cam1"] = False
    assert wait_until(lambda: status.last().frames_dropped >= 10, 10), status.last()
    st = status.last()
    ages = dict(zip(st.stream_names, st.stream_ages))
    assert ages["/cameras/cam1/image_raw"] > 0.25
    assert ages["/cameras/cam0/image_raw"] < ages["/cameras/cam1/image_raw"]
    frames_before = st.frames_recorded
    time.sleep(0.3)
    assert status.last().frames_recorded == frames_before  # nothing recorded while cam1 is stale
    rig.enabled["cam1"] = True
    wait_frames(status, frames_before + 5)
    saved = call(client, Trigger, "/recorder/save_episode")
    assert saved.success, saved.message
    assert "/cameras/cam1/image_raw:" in saved.message  # per-stream drop count reported
    report = validate_dataset(tmp_path / "ds")
    assert report.ok, [str(p) for p in report.problems]
    assert LeRobotReader(tmp_path / "ds").tasks == {0: "wipe the table"}


def test_discard_leaves_nothing_behind(ros, make_recorder, tmp_path):
    client = ros.node("test_client")
    Rig(ros.node("rig"))
    make_recorder()
    status = Collector(client, RecorderStatus, "/recorder/status")
    ds = tmp_path / "ds"
    assert start(client, "keep me").success
    wait_frames(status, 10)
    assert call(client, Trigger, "/recorder/save_episode").success
    before = sorted(str(p.relative_to(ds)) for p in ds.rglob("*") if p.is_file())
    info_before = (ds / "meta" / "info.json").read_bytes()

    res = start(client, "throw me away")
    assert res.success and res.episode_index == 1
    wait_frames(status, 10)
    res = call(client, Trigger, "/recorder/discard_episode")
    assert res.success, res.message
    assert not (ds / ".staging").exists()
    after = sorted(str(p.relative_to(ds)) for p in ds.rglob("*") if p.is_file())
    assert after == before
    assert (ds / "meta" / "info.json").read_bytes() == info_before
    report = validate_dataset(ds)
    assert report.ok and report.episodes == 1, [str(p) for p in report.problems]
    assert LeRobotReader(ds).tasks == {0: "keep me"}
    # nothing left to save
    again = call(client, Trigger, "/recorder/save_episode")
    assert not again.success and "no episode is recording" in again.message
    # the discarded index is reused
    res = start(client)
    assert res.success and res.episode_index == 1


def test_time_limit_autosaves_and_reset_refuses_start(ros, make_recorder, tmp_path):
    client = ros.node("test_client")
    Rig(ros.node("rig"))
    make_recorder(episode_time_limit=1.0, reset_time=3.0)
    status = Collector(client, RecorderStatus, "/recorder/status")
    assert start(client).success
    assert wait_until(lambda: has(status, lambda s: s.episodes_saved == 1), 20), status.last()
    assert wait_until(lambda: status.last().state == RecorderStatus.RESETTING, 5)
    refused = start(client)
    assert not refused.success
    assert "resetting" in refused.message and "reset_time" in refused.message
    reader = LeRobotReader(tmp_path / "ds")
    # The limit is what is asserted: at most 1 s at 30 fps (+1 for the tick at the limit). How many
    # of those ticks became frames depends on machine load (late ticks are skipped, not invented).
    assert 1 <= reader.episode_length(0) <= 31
    assert validate_dataset(tmp_path / "ds").ok
    # after the reset period the next episode starts with the next index
    assert wait_until(lambda: status.last().state == RecorderStatus.IDLE, 6)
    res = start(client)
    assert res.success and res.episode_index == 1


def test_next_state_action_is_the_following_state(ros, make_recorder, tmp_path):
    client = ros.node("test_client")
    rig = Rig(ros.node("rig"), trajectories=False)  # free-drive: nobody commands the arm
    make_recorder(action_source="next_state")
    status = Collector(client, RecorderStatus, "/recorder/status")
    assert start(client).success
    wait_frames(status, 15)
    assert call(client, Trigger, "/recorder/save_episode").success
    assert validate_dataset(tmp_path / "ds").ok
    cols = LeRobotReader(tmp_path / "ds").episode_columns(0)
    state, action = cols["observation.state"], cols["action"]
    assert rows_match(state, rig.states)
    np.testing.assert_array_equal(action[:-1], state[1:])
    np.testing.assert_array_equal(action[-1], state[-1])
    assert status.last().stream_names == [
        "/cameras/cam0/image_raw",
        "/cameras/cam1/image_raw",
        "/xarm/joint_states",
    ]


def test_missing_commands_drop_frames_not_guess(ros, make_recorder, tmp_path):
    client = ros.node("test_client")
    Rig(ros.node("rig"), trajectories=False)
    make_recorder()
    status = Collector(client, RecorderStatus, "/recorder/status")
    assert start(client).success
    assert wait_until(lambda: has(status, lambda s: s.frames_dropped >= 10), 10)
    assert status.last().frames_recorded == 0
    res = call(client, Trigger, "/recorder/save_episode")
    assert not res.success and "no frames" in res.message and "/xarm/accepted_trajectory" in res.message
    assert validate_dataset(tmp_path / "ds").episodes == 0


def test_bad_configuration_names_the_parameter(ros, tmp_path):
    features = write_features(tmp_path / "features.yaml")
    with pytest.raises(ValueError, match="dataset_dir"):
        RecorderNode(context=ros.context, parameter_overrides=as_overrides(recorder_params("", features)))
    with pytest.raises(ValueError, match="'fps'"):  # a nested RecorderConfig parameter, out of range
        RecorderNode(
            context=ros.context,
            parameter_overrides=as_overrides(recorder_params(tmp_path / "ds", features, fps=0)),
        )
    # an existing dataset recorded with other cameras is refused, with what differs
    params = recorder_params(tmp_path / "ds", features)
    node = RecorderNode(context=ros.context, parameter_overrides=as_overrides(params))
    node.close()
    node.destroy_node()
    with pytest.raises(ValueError, match="cameras"):
        RecorderNode(
            context=ros.context,
            parameter_overrides=as_overrides(recorder_params(tmp_path / "ds", features, cameras=["cam0"])),
        )


def test_official_xarm6_units_store_degrees_and_gripper_pulses(ros, make_recorder, tmp_path):
    """`units: official_xarm6`: rows hold the official Evo-1 xArm6 convention (deg + raw gripper pulses)
    of exactly the published REP-103 values, for datasets meant for the official trainer."""
    from evo1_ros.control.limits import GripperPulseMap
    from evo1_ros.control.units import UnitConvention, to_convention

    client = ros.node("test_client")
    rig = Rig(ros.node("rig"))
    make_recorder(camera_max_age=2.0, state_max_age=2.0, units="official_xarm6")
    status = Collector(client, RecorderStatus, "/recorder/status")
    assert wait_until(lambda: status.last() is not None and min(status.last().stream_ages) >= 0, 15)
    assert start(client, "pick_place_can").success
    wait_frames(status, 10)
    saved = call(client, Trigger, "/recorder/save_episode")
    assert saved.success, saved.message

    gripper = GripperPulseMap.from_yaml()

    def official(vectors):
        return [
            to_convention(np.asarray(v, float), JOINTS, UnitConvention.OFFICIAL_XARM6, gripper)
            for v in vectors
        ]

    cols = LeRobotReader(tmp_path / "ds").episode_columns(0)
    assert rows_match(cols["observation.state"], official(rig.states))
    assert rows_match(cols["action"], official(rig.commands))
    assert not rows_match(cols["action"], rig.commands)  # really converted
    assert validate_dataset(tmp_path / "ds").ok

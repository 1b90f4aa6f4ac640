"""The recorder's pure parts: stream sampling with max age, commanded targets, episode rules, set-up."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo1_ros.parameters import ParameterError, from_parameters
from recording.dataset.features import CameraSpec, DatasetFeatures, ExtraSpec
from recording.recorder.command_tracker import CommandError, CommandTracker
from recording.recorder.episode_session import EpisodeSession, Phase
from recording.recorder.recorder_setup import (
    RecorderConfig,
    SetupError,
    build_features,
    describe_difference,
    joint_vector,
)
from recording.recorder.stream_sampling import FrameSampler, LatestStream


def test_stale_and_missing_streams_drop_frames_and_are_counted_per_stream():
    cam, js = LatestStream("cam", 0.2), LatestStream("js", 0.05)
    sampler = FrameSampler([cam, js])
    s = sampler.sample(1.0)
    assert s.stale == ["cam", "js"] and not s.ok
    cam.update("img1", 1.0)
    js.update("q1", 1.0)
    s = sampler.sample(1.04)
    assert s.ok and s.values == {"cam": "img1", "js": "q1"}
    s = sampler.sample(1.1)  # js is 0.1 s old > 0.05
    assert s.stale == ["js"]
    js.update("q2", 1.1)
    s = sampler.sample(1.25)  # cam 0.25 s old, js 0.15 s old
    assert s.stale == ["cam", "js"]
    assert sampler.frames_sampled == 4 and sampler.frames_dropped == 3
    assert sampler.drops_by_stream == {"cam": 2, "js": 3}
    assert sampler.drop_summary() == "cam: 2, js: 3"
    assert sampler.ages(1.3) == {"cam": pytest.approx(0.3), "js": pytest.approx(0.2)}
    sampler.reset_counts()
    assert sampler.frames_dropped == 0 and sampler.drop_summary() == ""


def test_zero_max_age_means_hold_forever_and_duplicate_names_are_refused():
    s = LatestStream("cmd", 0.0)
    s.update(True, 0.0)
    assert s.is_fresh(1e6)
    with pytest.raises(ValueError, match="twice"):
        FrameSampler([LatestStream("a", 1), LatestStream("a", 1)])
    with pytest.raises(ValueError, match="max_age"):
        LatestStream("a", -1)


def test_command_held_interpolated_and_replaced_like_jtc():
    tr = CommandTracker(["j1", "j2"])
    assert tr.sample(0.0) is None
    # first command: j1 from its measured value 0 to 1.0 over 1 s, j2 jumps to 2.0
    tr.add(["j1", "j2"], 0.0, [1.0], [[1.0, 2.0]], received_at=10.0, measured={"j1": 0.0})
    np.testing.assert_allclose(tr.sample(10.5), [0.5, 2.0])  # j2 had no measured value: first point held
    np.testing.assert_allclose(tr.sample(12.0), [1.0, 2.0])  # after the last point: held
    # replaced at 10.5 (header stamp) with a new target for j1 only: ramps from where it was
    tr.add(["j1"], 10.5, [0.5], [[0.0]], received_at=10.6)
    np.testing.assert_allclose(tr.sample(10.5), [0.5, 2.0])
    np.testing.assert_allclose(tr.sample(10.75), [0.25, 2.0])
    np.testing.assert_allclose(tr.sample(11.5), [0.0, 2.0])
    # a point at time_from_start 0 is a step, and the old target holds until then (no ramp between)
    tr.add(["j2"], 0.0, [0.0], [[3.0]], received_at=20.0)
    np.testing.assert_allclose(tr.sample(19.99), [0.0, 2.0])
    np.testing.assert_allclose(tr.sample(20.0), [0.0, 3.0])
    # an empty trajectory stops: hold where the command is at that moment
    tr.add(["j1"], 0.0, [1.0], [[1.0]], received_at=30.0)
    tr.add(["j1"], 0.0, [], [], received_at=30.5)
    np.testing.assert_allclose(tr.sample(35.0), [0.5, 3.0])
    # unknown joints are ignored; bad commands are refused and change nothing
    tr.add(["j1", "gripper"], 0.0, [0.0], [[0.5, 9.0]], received_at=40.0)
    with pytest.raises(CommandError):
        tr.add(["j1"], 0.0, [0.2, 0.1], [[1.0], [2.0]], received_at=50.0)
    with pytest.raises(CommandError):
        tr.add(["j1"], 0.0, [0.2], [[float("nan")]], received_at=50.0)
    np.testing.assert_allclose(tr.sample(60.0), [0.5, 3.0])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=1, max_size=40))
def test_streamed_targets_are_held_between_commands(values):
    """One-point commands at 30 Hz with time_from_start 0: every sample is one of the commanded values."""
    tr = CommandTracker(["j"], keep_s=0.5)
    for i, v in enumerate(values):
        tr.add(["j"], 0.0, [0.0], [[v]], received_at=i / 30)
        t = i / 30 + 1 / 60
        assert tr.sample(t)[0] == v
    assert len(tr._segments) <= 0.5 * 30 + 2  # pruned, memory stays bounded


def test_episode_rules():
    s = EpisodeSession(time_limit=2.0, reset_time=1.0)
    assert s.check_start(0.0) is None
    s.start(0.0, "t", 0)
    assert "already recording" in s.check_start(0.5).message
    assert not s.time_up(1.9) and s.time_up(2.0)
    s.begin_save(2.0)
    assert s.phase == Phase.SAVING and "being saved" in s.check_stop("discard").message
    s.saved(2.5, next_index=1)
    assert s.phase == Phase.RESETTING and s.episode_index == 1
    refusal = s.check_start(3.0)
    assert "resetting" in refusal.message and "0.5 s left" in refusal.message
    assert s.check_start(3.5) is None and s.phase == Phase.IDLE
    assert s.elapsed(10.0) == pytest.approx(2.0)  # duration of the last episode is kept
    s.start(4.0, "t", 1)
    s.failed(4.5, "disk full", next_index=1)
    assert s.phase == Phase.ERROR and "last error: disk full" in s.check_stop("save").message
    assert s.check_start(4.6) is None  # an error does not lock the operator out
    s.start(5.0, "t", 1)
    assert s.error == ""
    s.discarded(5.5)
    assert s.phase == Phase.RESETTING
    no_reset = EpisodeSession()
    no_reset.start(0, "t", 0)
    no_reset.discarded(1)
    assert no_reset.phase == Phase.IDLE


def test_recorder_config_is_held_to_the_parameter_ranges_when_built_directly():
    """RecorderConfig declares the recorder's parameters; a config built without ROS is checked the same."""
    cfg = from_parameters(RecorderConfig, {"cameras": ["cam0"], "fps": 15, "units": "official_xarm6"})
    assert cfg.cameras == ("cam0",) and cfg.fps == 15 and cfg.units == "official_xarm6"
    assert RecorderConfig().cameras == ("base", "wrist")
    with pytest.raises(ParameterError, match="'fps'"):
        RecorderConfig(fps=0)
    with pytest.raises(ParameterError, match="'state_max_age'"):
        RecorderConfig(state_max_age=-0.1)
    with pytest.raises(ParameterError, match="'action_source'"):
        from_parameters(RecorderConfig, {"action_source": "joystick"})


def test_features_and_dataset_compatibility():
    base = DatasetFeatures(
        ("a", "b"), ("a", "b"), (CameraSpec("base", 480, 640), CameraSpec("wrist", 480, 640))
    )
    f = build_features(base, ["wrist"])
    assert [(c.name, c.height, c.width) for c in f.cameras] == [("wrist", 480, 640)]
    f = build_features(base, ["base", "side"], width=64, height=48)
    assert [(c.name, c.height, c.width) for c in f.cameras] == [("base", 48, 64), ("side", 48, 64)]
    with pytest.raises(SetupError, match="'side' is not in the features file"):
        build_features(base, ["side"])
    with pytest.raises(SetupError, match="both image_width and image_height"):
        build_features(base, ["base"], width=64)
    with pytest.raises(SetupError, match="extra feature 'foo'"):
        build_features(DatasetFeatures(("a",), ("a",), (), (ExtraSpec("foo", "int64"),)), [])
    assert describe_difference(f, 30, f, 30) is None
    diff = describe_difference(f, 30, build_features(base, ["base"], 64, 48), 15)
    assert "fps 30 vs 15" in diff and "cameras" in diff


def test_joint_vector_reorders_and_reports_missing():
    vec, bad = joint_vector(["b", "a", "c"], [2.0, 1.0, 3.0], ["a", "b"])
    np.testing.assert_array_equal(vec, [1.0, 2.0])
    assert bad == []
    vec, bad = joint_vector(["a"], [1.0], ["a", "b"])
    assert vec is None and bad == ["b"]
    vec, bad = joint_vector(["a", "b"], [1.0, float("nan")], ["a", "b"])
    assert vec is None and bad == ["b"]


def test_on_an_arrival_clock_a_sample_after_the_tick_is_fresh_not_a_clock_problem():
    # With stamp_source receive the stamps are monotonic arrival times: a message that arrives on
    # another callback thread between the tick reading the clock and sampling is simply the newest.
    arrival, header = LatestStream("cam", 0.2, arrival_clock=True), LatestStream("cam", 0.2)
    for stream in (arrival, header):
        stream.update("img", 10.01)
    assert arrival.age(10.0) == 0.0 and arrival.is_fresh(10.0) and not arrival.from_future(10.0)
    assert header.age(10.0) < 0 and not header.is_fresh(10.0) and header.from_future(10.0)
    assert arrival.age(10.5) == pytest.approx(0.49) and not arrival.is_fresh(10.5)  # old still old

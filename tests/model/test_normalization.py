"""Min/max normalisation to [−1, 1] with clamp, padding after normalising, both norm_stats.json layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo1_ros.model import NormStats

STATS = NormStats(
    state_min=np.array([-2.0, 0.0, 10.0]),
    state_max=np.array([2.0, 1.0, 10.0]),  # last dim degenerate
    action_min=np.array([-1.0, 0.0]),
    action_max=np.array([3.0, 850.0]),
)


def test_formula_clamp_and_padding():
    n = STATS.normalize_state(np.array([0.0, 0.25, 10.0]), pad_to=6)
    np.testing.assert_allclose(n, [0.0, -0.5, -1.0, 0, 0, 0], atol=1e-6)
    assert n.dtype == np.float32
    clamped = STATS.normalize_state(np.array([5.0, -1.0, 10.0]), pad_to=3)
    np.testing.assert_allclose(clamped, [1.0, -1.0, -1.0])
    a = STATS.normalize_action(np.array([[1.0, 425.0]]), pad_to=24)
    assert a.shape == (1, 24) and np.all(a[0, 2:] == 0)
    np.testing.assert_allclose(a[0, :2], [0.0, 0.0], atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=2, max_size=2))
def test_denormalize_inverts_normalize(values):
    a = np.array(values)
    robot = STATS.denormalize_action(np.concatenate([a, np.zeros(22)]))
    assert robot.shape == (2,)
    np.testing.assert_allclose(STATS.normalize_action(robot, pad_to=2), a, atol=1e-5)


def test_mask():
    assert STATS.action_mask(24).tolist() == [True, True] + [False] * 22


def test_old_format(reference_dir):
    stats = NormStats.load(reference_dir / "norm_stats.json")
    assert stats.state_dim == 7 and stats.action_dim == 7
    assert stats.action_max[6] == 850.0


def test_new_format_and_selection(tmp_path):
    block = {
        "observation.state": {"min": [0, 0], "max": [1, 1], "mean": [0.5, 0.5]},
        "action": {"min": [0], "max": [2], "q01": [0.1]},
    }
    data = {"aloha_joint": {"robotwin_a": block, "robotwin_b": block}, "other_arm": {"ds": block}}
    path = tmp_path / "norm_stats.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="arm_key"):
        NormStats.load(path)
    with pytest.raises(ValueError, match="dataset_key"):
        NormStats.load(path, arm_key="aloha_joint")
    stats = NormStats.load(path, arm_key="aloha_joint", dataset_key="robotwin_b")
    assert stats.state_dim == 2 and stats.action_dim == 1
    assert NormStats.load(path, arm_key="other_arm").action_max.tolist() == [2.0]
    with pytest.raises(ValueError, match="no arm 'nope'"):
        NormStats.load(path, arm_key="nope")


def test_save_load_round_trip(tmp_path):
    STATS.save(tmp_path / "s.json", arm_key="xarm6")
    again = NormStats.load(tmp_path / "s.json")
    np.testing.assert_array_equal(again.action_max, STATS.action_max)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"arm": {"action": {"min": [0], "max": [1]}}}, "needs both"),
        ({"arm": {"observation.state": {"min": [0]}, "action": {"min": [0], "max": [1]}}}, "'max'"),
        (
            {"arm": {"observation.state": {"min": [0], "max": [None]}, "action": {"min": [0], "max": [1]}}},
            "finite",
        ),
        (
            {"arm": {"observation.state": {"min": [1], "max": [0]}, "action": {"min": [0], "max": [1]}}},
            "max < min",
        ),
        ({}, "non-empty"),
    ],
)
def test_malformed_stats(data, message):
    with pytest.raises((ValueError, TypeError), match=message):
        NormStats.from_dict(data)


def test_bad_inputs():
    with pytest.raises(ValueError, match="norm stats have 3"):
        STATS.normalize_state(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        STATS.normalize_state(np.array([0.0, np.nan, 0.0]))

"""Teleop maths: twist -> joint targets follows the twist (checked with FK), limits, timeout, keys, buttons."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo1_ros.control.kinematics import TCP_LINK, SerialChain
from evo1_ros.control.limits import ARM_JOINTS, JointLimits
from evo1_ros.control.teleop import (
    JOG_KEYS,
    ArmJogger,
    ButtonEdges,
    Gripper,
    JogSettings,
    TwistHold,
    key_twist,
    shape_twist,
)

CHAIN = SerialChain.from_urdf(tip=TCP_LINK)
LIMITS = JointLimits.from_yaml().subset(ARM_JOINTS)
# well inside the workspace, away from singularities (elbow bent, wrist pitched)
Q0 = np.array([0.2, -0.3, -0.7, 0.1, 1.0, -0.2])


def jogger(**kw) -> ArmJogger:
    return ArmJogger(CHAIN, LIMITS, JogSettings(**kw))


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    v = v / np.max(np.abs(v))  # rescale first: the norm of a vector like (0, 0, 2e-162) underflows
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("axis", range(3))
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_linear_twist_moves_the_tcp_along_it(axis, sign):
    j = jogger(max_linear=0.1)
    tw = np.zeros(6)
    tw[axis] = 0.05 * sign
    p0 = CHAIN.fk(Q0)
    q = Q0
    for _ in range(15):
        step = j.step(tw, q)
        q = step.target  # an arm that tracks the command exactly
    p1 = CHAIN.fk(q)
    moved = p1[:3, 3] - p0[:3, 3]
    assert float(np.dot(unit(moved), unit(tw[:3]))) > 0.99
    # about 15 periods at 0.05 m/s (plus one horizon ahead), DLS damping makes it a little slower
    assert 0.5 * 0.05 * 15 / 30 < np.linalg.norm(moved) < 0.05 * (15 / 30 + 0.1) * 1.05
    # orientation is (almost) unchanged by a pure translation
    dR = p1[:3, :3] @ p0[:3, :3].T
    assert np.arccos(np.clip((np.trace(dR) - 1) / 2, -1, 1)) < 0.02


def test_angular_twist_rotates_about_its_axis():
    j = jogger(max_angular=0.5)
    tw = np.array([0, 0, 0, 0, 0, 0.3])
    p0 = CHAIN.fk(Q0)
    q = Q0
    for _ in range(10):
        q = j.step(tw, q).target
    p1 = CHAIN.fk(q)
    dR = p1[:3, :3] @ p0[:3, :3].T
    w = np.array([dR[2, 1] - dR[1, 2], dR[0, 2] - dR[2, 0], dR[1, 0] - dR[0, 1]])
    assert float(np.dot(unit(w), [0, 0, 1])) > 0.98
    assert np.linalg.norm(p1[:3, 3] - p0[:3, 3]) < 0.01  # the TCP stays put while turning


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=6, max_size=6))
def test_shaped_twist_respects_speed_limits_and_direction(raw):
    tw = shape_twist(raw, max_linear=0.1, max_angular=0.4)
    assert np.linalg.norm(tw[:3]) <= 0.1 + 1e-12
    assert np.linalg.norm(tw[3:]) <= 0.4 + 1e-12
    raw = np.asarray(raw)
    for part in (slice(0, 3), slice(3, 6)):
        if np.linalg.norm(tw[part]) > 0:
            assert np.dot(unit(tw[part]), unit(raw[part])) > 1 - 1e-9


def test_deadband_scaling_and_bad_input():
    tw = shape_twist(
        [0.01, -0.5, 0, 0, 0.01, 2.0],
        linear_scale=0.2,
        angular_scale=0.1,
        deadband=0.02,
        max_linear=1,
        max_angular=1,
    )
    np.testing.assert_allclose(tw, [0, -0.1, 0, 0, 0, 0.2])
    assert not np.any(shape_twist([np.nan, np.inf, 0, 0, 0, 0], max_linear=1, max_angular=1))


def test_jogger_caps_tcp_and_joint_speed():
    j = jogger(max_linear=0.05)
    q = Q0.copy()
    p0 = CHAIN.fk(q)[:3, 3]
    for _ in range(30):  # 1 s of commands at a huge requested speed
        step = j.step([5.0, 0, 0, 0, 0, 0], q)
        assert np.all(np.abs(step.velocity) <= LIMITS.max_velocity + 1e-9)
        q = j.reference
    # 1 s at the 0.05 m/s cap (1 % for integrating a linearised step), not 5 m/s
    assert np.linalg.norm(CHAIN.fk(q)[:3, 3] - p0) <= 0.05 * 1.01


def test_joint_limits_are_never_left():
    q_edge = Q0.copy()
    q_edge[2] = LIMITS.upper[2] - 0.01  # joint3 next to its upper limit
    j = jogger(max_linear=0.1)
    rng = np.random.default_rng(0)
    q = q_edge
    for _ in range(60):
        step = j.step(rng.uniform(-1, 1, 6), q)
        assert np.all(step.target >= LIMITS.lower - 1e-12) and np.all(step.target <= LIMITS.upper + 1e-12)
        q = step.target


def test_zero_or_stale_twist_holds_the_reference():
    hold = TwistHold(timeout=0.3)
    hold.set([0.05, 0, 0, 0, 0, 0], now=10.0)
    tw, fresh = hold.get(10.2)
    assert fresh and tw[0] == 0.05
    tw, fresh = hold.get(10.31)
    assert not fresh and not np.any(tw)
    j = jogger()
    first = j.step([0.05, 0, 0, 0, 0, 0], Q0)
    moving_ref = j.reference.copy()
    assert not np.allclose(first.target, Q0)
    held = [j.step(tw, moving_ref).target for _ in range(5)]
    for h in held:
        np.testing.assert_array_equal(h, moving_ref)  # no drift, no jump back


def test_reference_resyncs_when_the_arm_is_elsewhere():
    j = jogger(resync_threshold=0.2)
    j.step([0.05, 0, 0, 0, 0, 0], Q0)
    moved_by_hand = Q0 + np.array([0.5, 0, 0, 0, 0, 0])
    step = j.step([0, 0, 0, 0, 0, 0], moved_by_hand)
    np.testing.assert_allclose(step.target, moved_by_hand)
    assert jogger().step([0.1, 0, 0, 0, 0, 0], None) is None  # nothing measured yet: no command


def test_tool_frame_twist():
    j = jogger(frame="tool")
    p0 = CHAIN.fk(Q0)
    q = Q0
    for _ in range(10):
        q = j.step([0, 0, 0.05, 0, 0, 0], q).target  # along the gripper's approach axis
    moved = CHAIN.fk(q)[:3, 3] - p0[:3, 3]
    assert float(np.dot(unit(moved), p0[:3, 2])) > 0.99


def test_button_edges():
    e = ButtonEdges()
    assert e.update([1, 0, 0]) == set()  # held at start: no edge
    assert e.update([1, 1, 0]) == {1}
    assert e.update([1, 1, 0]) == set()
    assert e.update([0, 0, 1]) == {2}
    assert e.update([1, 0, 1, 1]) == {0, 3}


def test_keys_and_gripper():
    assert set(JOG_KEYS) == set("wsadrfuoikjl")
    np.testing.assert_array_equal(key_twist("w", 0.05, 0.3), [0.05, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(key_twist("F", 0.05, 0.3), [0, 0, -0.05, 0, 0, 0])
    np.testing.assert_array_equal(key_twist("l", 0.05, 0.3), [0, 0, 0, 0, 0, -0.3])
    assert key_twist("x", 0.05, 0.3) is None
    g = Gripper(0.0, 0.85)
    g.sync(0.8)
    assert g.closed
    assert g.toggle() == 0.0 and not g.closed
    assert g.toggle() == 0.85
    g.sync(0.1)  # syncing only seeds the target
    assert g.target == 0.85

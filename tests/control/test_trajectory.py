"""Trajectory validation (every rejection reason) and time interpolation (linear, cubic Hermite)."""

from __future__ import annotations

import numpy as np
import pytest

from evo1_ros.control import trajectory as T
from evo1_ros.control.limits import ARM_JOINTS, JointLimits
from evo1_ros.control.trajectory import TrajectoryError, validate


@pytest.fixture
def lim() -> JointLimits:
    return JointLimits.create(
        ["a", "b", "c"], [-1.0, -2.0, 0.0], [1.0, 2.0, 0.85], [1.0, 2.0, 1.5], [5.0] * 3
    )


def _reason(lim: JointLimits, *args, **kwargs) -> str:
    with pytest.raises(TrajectoryError) as info:
        validate(*args, limits=lim, **kwargs)
    assert str(info.value).startswith(info.value.reason)
    return info.value.reason


GOOD_T = [0.1, 0.2]
GOOD_Q = [[0.0, 0.0, 0.1], [0.1, 0.2, 0.3]]


def test_malformed_trajectories_are_rejected_with_their_reason(lim: JointLimits) -> None:
    abc = ["a", "b", "c"]
    nan, inf = float("nan"), float("inf")
    cases = [
        (T.NO_JOINTS, dict(joint_names=[], times_from_start=GOOD_T, positions=GOOD_Q)),
        (T.UNKNOWN_JOINT, dict(joint_names=["a", "b", "x"], times_from_start=GOOD_T, positions=GOOD_Q)),
        (T.DUPLICATE_JOINT, dict(joint_names=["a", "b", "b"], times_from_start=GOOD_T, positions=GOOD_Q)),
        (T.MISSING_JOINT, dict(joint_names=["a", "b"], times_from_start=GOOD_T, positions=[[0, 0], [0, 0]])),
        (T.SHAPE_MISMATCH, dict(joint_names=abc, times_from_start=[0.1], positions=GOOD_Q)),
        (T.SHAPE_MISMATCH, dict(joint_names=abc, times_from_start=GOOD_T, positions=[[0, 0], [0, 0]])),
        (T.SHAPE_MISMATCH, dict(joint_names=abc, times_from_start=GOOD_T, positions=[[0, 0, 0], [0, 0]])),
        (
            T.SHAPE_MISMATCH,
            dict(joint_names=abc, times_from_start=GOOD_T, positions=GOOD_Q, velocities=[[0, 0, 0]]),
        ),
        (T.NOT_FINITE, dict(joint_names=abc, times_from_start=[0.1, nan], positions=GOOD_Q)),
        (T.NOT_FINITE, dict(joint_names=abc, times_from_start=[0.1, inf], positions=GOOD_Q)),
        (
            T.NOT_FINITE,
            dict(joint_names=abc, times_from_start=GOOD_T, positions=[[0, 0, 0.1], [0, nan, 0.1]]),
        ),
        (
            T.NOT_FINITE,
            dict(
                joint_names=abc,
                times_from_start=GOOD_T,
                positions=GOOD_Q,
                velocities=[[0, 0, 0], [0, 0, -inf]],
            ),
        ),
        (T.NEGATIVE_TIME, dict(joint_names=abc, times_from_start=[-0.1, 0.2], positions=GOOD_Q)),
        (T.NON_INCREASING_TIME, dict(joint_names=abc, times_from_start=[0.2, 0.2], positions=GOOD_Q)),
        (T.NON_INCREASING_TIME, dict(joint_names=abc, times_from_start=[0.3, 0.2], positions=GOOD_Q)),
        (
            T.POSITION_LIMIT,
            dict(joint_names=abc, times_from_start=GOOD_T, positions=[[0, 0, 0.1], [1.01, 0, 0.1]]),
        ),
        (
            T.POSITION_LIMIT,
            dict(joint_names=abc, times_from_start=GOOD_T, positions=[[0, 0, -0.01], [0, 0, 0.1]]),
        ),
        (
            T.VELOCITY_LIMIT,
            dict(
                joint_names=abc,
                times_from_start=GOOD_T,
                positions=GOOD_Q,
                velocities=[[0, 0, 0], [0, 2.1, 0]],
            ),
        ),
        (
            T.VELOCITY_LIMIT,
            dict(
                joint_names=abc,
                times_from_start=GOOD_T,
                positions=GOOD_Q,
                velocities=[[-1.01, 0, 0], [0, 0, 0]],
            ),
        ),
    ]
    for expected, kwargs in cases:
        assert _reason(lim, **kwargs) == expected, kwargs


def test_reason_names_the_offending_joint(lim: JointLimits) -> None:
    with pytest.raises(TrajectoryError, match=r"point 1: b=2\.5"):
        validate(["c", "b", "a"], GOOD_T, [[0.1, 0, 0], [0.1, 2.5, 0]], lim)


def test_columns_are_reordered_to_robot_order(lim: JointLimits) -> None:
    traj = validate(["c", "a", "b"], [0.5], [[0.3, 0.1, 0.2]], lim, velocities=[[0.03, 0.01, 0.02]])
    assert traj.joint_names == ("a", "b", "c")
    assert list(traj.indices) == [0, 1, 2]
    assert np.allclose(traj.positions, [[0.1, 0.2, 0.3]])
    assert np.allclose(traj.velocities, [[0.01, 0.02, 0.03]])


def test_points_within_tolerance_are_clamped(lim: JointLimits) -> None:
    traj = validate(["a", "b", "c"], [0.1], [[1.0005, -2.0005, 0.8505]], lim)
    assert np.array_equal(traj.positions[0], [1.0, -2.0, 0.85])
    with pytest.raises(TrajectoryError):
        validate(["a", "b", "c"], [0.1], [[1.0005, 0, 0.1]], lim, position_tolerance=1e-4)


def test_partial_trajectory_when_allowed(lim: JointLimits) -> None:
    traj = validate(["b", "a"], [0.1], [[0.2, 0.1]], lim, required=["a", "b"])
    assert traj.joint_names == ("a", "b")
    assert list(traj.indices) == [0, 1]


def test_empty_trajectory_is_valid_stop(lim: JointLimits) -> None:
    traj = validate(["a", "b", "c"], [], [], lim)
    assert traj.empty and traj.duration == 0.0
    assert T.empty_trajectory(lim).empty
    with pytest.raises(ValueError):
        traj.sample(0.0, np.zeros(3))


def test_validated_arrays_are_read_only(lim: JointLimits) -> None:
    traj = validate(["a", "b", "c"], GOOD_T, GOOD_Q, lim)
    with pytest.raises(ValueError):
        traj.positions[0, 0] = 5.0


def test_linear_interpolation_exact_at_knots_and_midpoints(lim: JointLimits) -> None:
    q = np.array([[0.0, 0.0, 0.0], [0.5, -1.0, 0.2], [0.1, 1.0, 0.8]])
    traj = validate(["a", "b", "c"], [1.0, 2.0, 4.0], q, lim)
    start = np.array([-0.5, 0.4, 0.1])
    for t, expected in [
        (1.0, q[0]),
        (2.0, q[1]),
        (4.0, q[2]),
        (1.5, (q[0] + q[1]) / 2),
        (3.0, (q[1] + q[2]) / 2),
        (3.5, q[1] + 0.75 * (q[2] - q[1])),
    ]:
        assert np.allclose(traj.sample(t, start), expected, atol=1e-12), t
    # before the first point: from where the arm was when the trajectory started (JTC semantics)
    assert np.allclose(traj.sample(0.0, start), start)
    assert np.allclose(traj.sample(0.5, start), (start + q[0]) / 2)
    # the trajectory took over 0.2 s after its start time: hold until then, then move to point 0
    assert np.allclose(traj.sample(0.1, start, start_offset=0.2), start)
    assert np.allclose(traj.sample(0.6, start, start_offset=0.2), start + 0.5 * (q[0] - start))
    # after the end: hold the last point
    assert np.allclose(traj.sample(10.0, start), q[2])


def test_cubic_hermite_reproduces_a_cubic_exactly(lim: JointLimits) -> None:
    """Hermite interpolation with exact end velocities is exact for any cubic polynomial."""

    def p(t):
        return np.array(
            [0.1 + 0.2 * t - 0.3 * t**2 + 0.1 * t**3, -0.5 + 0.4 * t**2 - 0.12 * t**3, 0.4 + 0.01 * t]
        )

    def dp(t):
        return np.array([0.2 - 0.6 * t + 0.3 * t**2, 0.8 * t - 0.36 * t**2, 0.01])

    times = [0.0, 0.7, 1.5, 2.0]
    traj = validate(["a", "b", "c"], times, [p(t) for t in times], lim, velocities=[dp(t) for t in times])
    for t in np.linspace(0.0, 2.0, 41):
        assert np.allclose(traj.sample(float(t), p(0.0)), p(t), atol=1e-12), t
    # midpoint of a segment by the Hermite basis: (p0 + p1)/2 + h (v0 - v1)/8
    h = 0.8
    mid = (p(0.7) + p(1.5)) / 2 + h * (dp(0.7) - dp(1.5)) / 8
    assert np.allclose(traj.sample(1.1, p(0.0)), mid, atol=1e-12)


def test_hermite_lead_in_starts_from_the_arm_state(lim: JointLimits) -> None:
    traj = validate(["a", "b", "c"], [1.0], [[0.5, 0.5, 0.5]], lim, velocities=[[0.0, 0.0, 0.0]])
    start, v_start = np.zeros(3), np.array([0.3, 0.0, -0.2])
    eps = 1e-6
    assert np.allclose(traj.sample(0.0, start, v_start), start)
    slope = (traj.sample(eps, start, v_start) - traj.sample(0.0, start, v_start)) / eps
    assert np.allclose(slope, v_start, atol=1e-4)
    assert np.allclose(traj.sample(1.0, start, v_start), [0.5, 0.5, 0.5])


def test_arm_trajectory_against_shipped_limits() -> None:
    lim = JointLimits.from_yaml()
    traj = validate(list(ARM_JOINTS), [0.5], [[0.0] * 6], lim, required=ARM_JOINTS)
    assert traj.joint_names == ARM_JOINTS
    assert _reason(lim, list(ARM_JOINTS), [0.5], [[0.0] * 6]) == T.MISSING_JOINT  # drive_joint required

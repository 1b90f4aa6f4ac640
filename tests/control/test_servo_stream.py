"""ServoStreamer: exact tracking when caps allow, JTC replacement semantics, stop/hold, caps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evo1_ros.control.limits import ARM_JOINTS, JointLimits
from evo1_ros.control.servo_stream import ServoStreamer, braking_speed, closing_step, limit_step
from evo1_ros.control.trajectory import validate

DT = 0.01


def _loose() -> JointLimits:
    """Caps far above anything the tests ask for: the stream must then follow trajectories exactly."""
    return JointLimits.create(["a", "b"], [-3.0, -3.0], [3.0, 3.0], [1e3, 1e3], [1e7, 1e7])


def _run(streamer: ServoStreamer, t0: float, n: int, dt: float = DT) -> tuple[np.ndarray, np.ndarray]:
    times = t0 + dt * np.arange(1, n + 1)
    return times, np.array([streamer.step(float(t), dt) for t in times])


def _check_caps(q: np.ndarray, lim: JointLimits, dt: float = DT, v0: np.ndarray | None = None) -> None:
    v = np.diff(q, axis=0) / dt
    assert np.all(np.abs(v) <= lim.max_velocity * (1 + 1e-9) + 1e-12)
    v_all = np.vstack([np.zeros(q.shape[1]) if v0 is None else v0, v])
    assert np.all(np.abs(np.diff(v_all, axis=0) / dt) <= lim.max_acceleration * (1 + 1e-7) + 1e-6)
    assert np.all(q >= lim.lower) and np.all(q <= lim.upper)


def test_follows_linear_trajectory_exactly_at_knots_and_midpoints() -> None:
    lim = _loose()
    s = ServoStreamer(lim, [0.0, 0.0])
    traj = validate(["a", "b"], [0.0, 0.5, 1.0], [[0.0, 0.0], [0.5, -0.25], [0.25, 1.0]], lim)
    s.set_trajectory(traj, 2.0, 2.0)
    times, q = _run(s, 2.0, 120)
    for t, expected in [
        (0.25, [0.25, -0.125]),
        (0.5, [0.5, -0.25]),
        (0.75, [0.375, 0.375]),
        (1.0, [0.25, 1.0]),
        (1.2, [0.25, 1.0]),
    ]:
        k = int(np.argmin(np.abs(times - 2.0 - t)))
        assert np.allclose(q[k], expected, atol=1e-9), t


def test_follows_hermite_trajectory_exactly() -> None:
    lim = _loose()
    s = ServoStreamer(lim, [0.0, 0.0])
    traj = validate(
        ["a", "b"], [0.0, 1.0], [[0.0, 0.0], [1.0, -1.0]], lim, velocities=[[0.0, 0.0], [0.0, 0.0]]
    )
    s.set_trajectory(traj, None, 0.0)
    times, q = _run(s, 0.0, 100)
    # smoothstep 3s^2 - 2s^3 at s = 0.5 -> 0.5, at s = 0.25 -> 0.15625
    assert np.allclose(q[np.argmin(np.abs(times - 0.5))], [0.5, -0.5], atol=1e-9)
    assert np.allclose(q[np.argmin(np.abs(times - 0.25))], [0.15625, -0.15625], atol=1e-9)
    assert np.allclose(q[-1], [1.0, -1.0], atol=1e-12)


def test_lead_in_from_current_command_before_first_point() -> None:
    lim = _loose()
    s = ServoStreamer(lim, [0.2, -0.2])
    traj = validate(["a", "b"], [1.0], [[1.2, 0.8]], lim)
    s.set_trajectory(traj, 0.0, 0.0)
    _, q = _run(s, 0.0, 100)
    assert np.allclose(q[49], [0.7, 0.3], atol=1e-9)  # t = 0.5: halfway from the start command
    assert np.allclose(q[99], [1.2, 0.8], atol=1e-9)


def test_replacement_keeps_old_trajectory_until_new_start_time() -> None:
    lim = _loose()
    s = ServoStreamer(lim, [0.0, 0.0])
    a = validate(["a", "b"], [1.0], [[1.0, 1.0]], lim)  # 1 rad/s ramp
    b = validate(["a", "b"], [0.5], [[0.0, 0.0]], lim)  # back to 0 within 0.5 s of its start
    s.set_trajectory(a, 0.0, 0.0)
    _run(s, 0.0, 20)  # now = 0.2
    s.set_trajectory(b, 0.4, 0.2)  # queued for t = 0.4
    assert s.goal_end_time() == pytest.approx(0.9)
    times, q = _run(s, 0.2, 80)
    assert np.allclose(q[times <= 0.4 + 1e-9][:, 0], times[times <= 0.4 + 1e-9], atol=1e-9)  # still A
    # B took over at 0.4 from the commanded 0.4 and runs linearly to 0 at 0.9
    k = int(np.argmin(np.abs(times - 0.65)))
    assert np.allclose(q[k], [0.2, 0.2], atol=1e-9)
    assert np.allclose(q[-1], [0.0, 0.0], atol=1e-12)


def test_later_queued_trajectory_is_dropped_by_earlier_start() -> None:
    lim = _loose()
    s = ServoStreamer(lim, [0.0, 0.0])
    late = validate(["a", "b"], [0.1], [[1.0, 1.0]], lim)
    early = validate(["a", "b"], [0.1], [[-1.0, -1.0]], lim)
    s.set_trajectory(late, 0.5, 0.0)
    s.set_trajectory(early, 0.2, 0.0)  # replaces everything from 0.2 on, including `late`
    _, q = _run(s, 0.0, 100)
    assert np.allclose(q[-1], [-1.0, -1.0])
    assert not np.any(q[:, 0] > 1e-12)


def test_start_time_in_the_past_skips_elapsed_points() -> None:
    lim = _loose()
    s = ServoStreamer(lim, [0.0, 0.0])
    traj = validate(["a", "b"], [0.0, 1.0, 2.0], [[0.0, 0.0], [1.0, 1.0], [1.0, 2.0]], lim)
    s.set_trajectory(traj, 8.5, 10.0)  # started 1.5 s ago: second segment, halfway
    q = s.step(10.01, DT)
    assert np.allclose(q, [1.0, 1.51], atol=1e-9)


def test_empty_trajectory_stops_and_holds_current_command() -> None:
    lim = _loose()
    s = ServoStreamer(lim, [0.0, 0.0])
    s.set_trajectory(validate(["a", "b"], [1.0], [[1.0, -1.0]], lim), 0.0, 0.0)
    _, q = _run(s, 0.0, 30)
    held = q[-1].copy()
    assert s.busy(0.3)
    s.set_trajectory(validate(["a", "b"], [], [], lim), None, 0.3)
    _, q2 = _run(s, 0.3, 50)
    assert np.allclose(q2, held, atol=1e-12)
    assert not s.busy(0.8)


def test_stop_under_caps_brakes_without_exceeding_them() -> None:
    lim = JointLimits.create(["a"], [-10.0], [10.0], [1.0], [2.0])
    s = ServoStreamer(lim, [0.0])
    s.set_trajectory(validate(["a"], [5.0], [[5.0]], lim), 0.0, 0.0)
    _, q1 = _run(s, 0.0, 100)
    assert s.velocity[0] == pytest.approx(1.0)  # cruising at the cap
    s.hold()
    _, q2 = _run(s, 1.0, 100)
    q = np.vstack([q1, q2])
    _check_caps(np.vstack([[0.0], q]), lim)
    stop = q2[-1, 0]
    assert np.all(q2[60:, 0] == stop)  # 1 rad/s at 2 rad/s^2 stops within 0.5 s, then holds
    assert stop - q1[-1, 0] == pytest.approx(0.25, abs=0.02)  # v^2 / 2a
    assert not s.is_moving


def test_replacement_mid_way_has_no_velocity_step_above_cap() -> None:
    lim = JointLimits.create(["a", "b"], [-2.0, -2.0], [2.0, 2.0], [1.0, 0.5], [3.0, 3.0])
    s = ServoStreamer(lim, [0.0, 0.0])
    s.set_trajectory(validate(["a", "b"], [2.0], [[1.9, 1.9]], lim), 0.0, 0.0)
    _, q1 = _run(s, 0.0, 60)
    s.set_trajectory(validate(["a", "b"], [0.01], [[-1.9, -1.9]], lim), None, 0.6)  # reverse at once
    _, q2 = _run(s, 0.6, 600)
    q = np.vstack([[0.0, 0.0], q1, q2])
    _check_caps(q, lim)
    assert np.allclose(q[-1], [-1.9, -1.9])


def test_never_overshoots_a_position_limit_at_full_speed() -> None:
    lim = JointLimits.create(["a"], [-1.0], [0.3], [2.0], [1.0])
    s = ServoStreamer(lim, [-1.0])
    # the target is the limit itself, reached far too fast for the caps
    s.set_trajectory(validate(["a"], [0.1], [[0.3]], lim), 0.0, 0.0)
    _, q = _run(s, 0.0, 400)
    _check_caps(np.vstack([[-1.0], q]), lim)
    assert q[-1, 0] == pytest.approx(0.3)


def test_no_trajectory_holds_initial_pose_never_zero() -> None:
    lim = JointLimits.from_yaml()
    q0 = np.array([0.3, -0.5, -0.7, 1.0, 0.4, -0.2, 0.6])
    s = ServoStreamer(lim, q0)
    _, q = _run(s, 0.0, 50)
    assert np.array_equal(q, np.tile(q0, (50, 1)))
    with pytest.raises(ValueError):
        ServoStreamer(lim, [0.0] * 6)
    with pytest.raises(ValueError):
        s.reset([float("nan")] * 7)


def test_trajectory_end_holds_last_point() -> None:
    lim = _loose()
    s = ServoStreamer(lim, [0.0, 0.0])
    s.set_trajectory(validate(["a", "b"], [0.1], [[0.3, 0.4]], lim), 0.0, 0.0)
    _, q = _run(s, 0.0, 500)
    assert np.allclose(q[20:], [0.3, 0.4])
    assert not s.busy(5.0)


def test_partial_trajectory_holds_the_other_joints() -> None:
    lim = JointLimits.from_yaml()
    q0 = np.array([0.0, 0.1, -0.5, 0.0, 0.5, 0.0, 0.4])
    s = ServoStreamer(lim, q0)
    traj = validate(list(ARM_JOINTS), [1.0], [[0.1, 0.2, -0.4, 0.1, 0.6, 0.1]], lim, required=ARM_JOINTS)
    s.set_trajectory(traj, 0.0, 0.0)
    _, q = _run(s, 0.0, 300)
    assert np.all(q[:, 6] == 0.4)  # drive_joint untouched
    assert np.allclose(q[-1, :6], [0.1, 0.2, -0.4, 0.1, 0.6, 0.1])
    _check_caps(np.vstack([q0, q]), lim)


def test_reset_outside_limits_never_moves_further_out() -> None:
    lim = JointLimits.create(["a"], [-1.0], [1.0], [1.0], [5.0])
    s = ServoStreamer(lim, [1.2])
    s.set_trajectory(validate(["a"], [0.1], [[1.0]], lim), 0.0, 0.0)
    _, q = _run(s, 0.0, 200)
    assert np.all(q[:, 0] <= 1.2) and np.all(np.diff(q[:, 0]) <= 1e-9)
    assert q[-1, 0] == pytest.approx(1.0)


def test_bad_calls_are_refused() -> None:
    lim = _loose()
    s = ServoStreamer(lim, [0.0, 0.0])
    with pytest.raises(ValueError):
        s.step(float("nan"), DT)
    assert np.array_equal(s.step(1.0, 0.0), [0.0, 0.0])  # dt <= 0: no motion
    other = JointLimits.create(["x", "y"], [-1, -1], [1, 1], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="do not match"):
        s.set_trajectory(validate(["x", "y"], [1.0], [[0.0, 0.0]], other), None, 0.0)
    with pytest.raises(ValueError):
        s.set_trajectory(validate(["a", "b"], [1.0], [[0.0, 0.0]], lim), float("inf"), 0.0)


def test_braking_and_closing_helpers() -> None:
    a, dt = 2.0, 0.01
    for d in [0.0, 1e-6, 0.001, 0.1, 3.0]:
        v = braking_speed(d, a, dt)
        assert v * dt + v * v / (2 * a) == pytest.approx(d, abs=1e-12)
        x = closing_step(d, a, dt)
        # moving x now, then x - u, x - 2u, ... until rest covers exactly d
        u = a * dt * dt
        total, step = 0.0, x
        while step > 1e-15:
            total += step
            step -= u
        assert total == pytest.approx(d, abs=1e-9)
    assert closing_step(1e-5, a, dt) == 1e-5  # within one step's reach: exact
    q, v = limit_step(0.0, 0.0, 100.0, -1.0, 1.0, 1.0, 2.0, dt)
    assert v == pytest.approx(a * dt) and q == pytest.approx(a * dt * dt)
    q, v = limit_step(0.0, 0.0, math.inf, -1.0, 1.0, 1.0, 2.0, dt)
    assert (q, v) == (0.0, 0.0)


def test_linear_trajectory_ends_at_its_last_point_at_rest_without_overshoot() -> None:
    """A linear trajectory's abrupt end used to overshoot by v^2/2a (0.030 rad for `home`)."""
    lim = JointLimits.create(["a"], [-3.0], [3.0], [1.0], [4.0])
    s = ServoStreamer(lim, [0.0])
    s.set_trajectory(validate(["a"], [2.0], [[1.0]], lim), 0.0, 0.0)  # 0.5 rad/s, half the cap
    _, q = _run(s, 0.0, 400)
    _check_caps(np.vstack([[0.0], q]), lim)
    assert np.max(q) <= 1.0 + 1e-12, np.max(q) - 1.0  # before: 1.031
    assert q[-1, 0] == pytest.approx(1.0, abs=1e-12) and not s.is_moving
    assert np.all(np.diff(q[:, 0]) >= -1e-12)  # never comes back: it did not pass the end
    v = np.diff(q[:, 0]) / DT
    assert np.max(v) == pytest.approx(0.5, rel=1e-6)  # on time while the caps allow it
    assert np.argmax(q[:, 0] >= 1.0 - 1e-12) * DT < 2.0 + 0.5 / 4.0 + 0.05  # late by <= the ramps


def test_capped_trajectory_is_slowed_down_as_a_whole_and_keeps_its_path() -> None:
    """j1 asked for 2 rad/s (cap 1), j2 for 0.4 rad/s: both slow down together, ratio kept at 0.2."""
    lim = JointLimits.create(["a", "b"], [-3.0, -3.0], [3.0, 3.0], [1.0, 1.0], [4.0, 4.0])
    s = ServoStreamer(lim, [0.0, 0.0])
    s.set_trajectory(validate(["a", "b"], [1.0], [[2.0, 0.4]], lim), 0.0, 0.0)
    times, q = _run(s, 0.0, 400)
    _check_caps(np.vstack([[0.0, 0.0], q]), lim)
    moving = q[:, 0] > 1e-3
    ratio = q[moving, 1] / q[moving, 0]
    assert np.max(np.abs(ratio - 0.2)) < 1e-6, (ratio.min(), ratio.max())  # before: up to 0.76
    done = [times[np.argmax(np.abs(q[:, j] - goal) < 1e-9)] for j, goal in enumerate([2.0, 0.4])]
    assert abs(done[0] - done[1]) < 1e-9, done  # before: j2 at 0.44 s, j1 at 1.24 s
    assert s.time_scale == 0.0 and not s.busy(times[-1])


def test_late_cycle_slows_the_trajectory_instead_of_skipping_it() -> None:
    """A cycle whose caps apply over a shorter dt than the real gap: no jump, the path stays intact."""
    lim = JointLimits.create(["a", "b"], [-3.0, -3.0], [3.0, 3.0], [1.0, 1.0], [4.0, 4.0])
    s = ServoStreamer(lim, [0.0, 0.0])
    s.set_trajectory(validate(["a", "b"], [2.0], [[1.0, 0.5]], lim), 0.0, 0.0)
    out = [s.step(DT * k, DT) for k in range(1, 51)]
    out.append(s.step(0.5 + 0.6, 2 * DT))  # the thread stalled 0.6 s; caps over two periods
    t = 1.1
    for _ in range(400):
        t += DT
        out.append(s.step(t, DT))
    q = np.array(out)
    assert np.max(np.abs(np.diff(q, axis=0))) <= 2 * DT * 1.0 + 1e-12
    moving = q[:, 0] > 1e-3
    np.testing.assert_allclose(q[moving, 1] / q[moving, 0], 0.5, atol=1e-6)
    assert np.allclose(q[-1], [1.0, 0.5], atol=1e-12)

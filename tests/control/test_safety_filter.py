"""SafetyFilter on the project's real limits file: clamps, faults, non-finite values, start distance,
gripper handling, and velocities the driver's validation and Hermite interpolation accept."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evo1_ros.control.limits import ARM_JOINTS, GRIPPER_JOINT, JointLimits
from evo1_ros.control.safety_filter import SafetyConfig, SafetyFilter
from evo1_ros.control.trajectory import validate

NAMES = [*ARM_JOINTS, GRIPPER_JOINT]
RATE = 30.0
HOME = np.array([0.0, -0.3, -0.8, 0.0, 1.0, 0.0, 0.3])


@pytest.fixture(scope="module")
def limits() -> JointLimits:
    return JointLimits.from_yaml()


def make(limits: JointLimits, **kw) -> SafetyFilter:
    kw.setdefault("max_step_change", 0.02)
    kw.setdefault("max_start_distance", 0.1)
    kw.setdefault("clamp_margin", 0.01)
    kw.setdefault("velocity_fraction", 1.0)  # the full velocity cap (the node runs at 0.5)
    return SafetyFilter(limits, NAMES, SafetyConfig(**kw))


def smooth_plan(n: int = 20, t0: float = 100.0, speed: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A plan starting at HOME, every joint moving at `speed` rad/s (< the 1 rad/s caps)."""
    times = t0 + np.arange(1, n + 1) / RATE
    k = np.arange(1, n + 1)[:, None]
    positions = HOME + speed * k / RATE * np.array([1, -1, 1, -1, 1, -1, 0.5])
    return times, positions


def driver_accepts(f: SafetyFilter, times: np.ndarray, result) -> None:
    """Validate exactly as ArmDriver.submit does, with time_from_start relative to a stamp before t0."""
    stamp = times[0] - 1.0 / RATE
    traj = validate(
        NAMES, (times - stamp).tolist(), result.positions, f.limits, result.velocities, required=()
    )
    assert traj.positions.shape == result.positions.shape


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_step_change": 0.0}, "max_step_change"),
        ({"max_start_distance": float("nan")}, "max_start_distance"),
        ({"clamp_margin": -0.1}, "clamp_margin"),
        ({"gripper_max_step_change": 0.0}, "gripper_max_step_change"),
        ({"velocity_fraction": 1.5}, "velocity_fraction"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    base = {"max_step_change": 0.02, "max_start_distance": 0.1, "clamp_margin": 0.01}
    with pytest.raises(ValueError, match=message):
        SafetyConfig(**{**base, **kwargs})


def test_unknown_joint_is_a_clear_error(limits):
    with pytest.raises(ValueError, match="joint7"):
        SafetyFilter(limits, [*NAMES[:6], "joint7"], SafetyConfig(0.02, 0.1, 0.01))


def test_a_plan_within_the_caps_passes_unchanged(limits):
    f = make(limits)
    times, positions = smooth_plan()
    r = f.filter(times, positions, HOME)
    assert r.fault is None and r.clamped == 0
    np.testing.assert_array_equal(r.positions, positions)
    driver_accepts(f, times, r)


def test_velocities_are_the_plans_central_differences_and_end_at_rest(limits):
    f = make(limits)
    times, positions = smooth_plan()
    r = f.filter(times, positions, HOME)
    central = (positions[2:] - positions[:-2]) / (times[2:] - times[:-2])[:, None]
    np.testing.assert_allclose(r.velocities[1:-1], central)
    np.testing.assert_allclose(r.velocities[0], (positions[1] - positions[0]) * RATE)
    np.testing.assert_array_equal(r.velocities[-1], 0.0)


def test_velocities_are_zero_at_a_turning_point_so_interpolation_never_overshoots(limits):
    f = make(limits)
    times = np.arange(1, 8) / RATE
    q = np.tile(HOME, (7, 1))
    q[:, 0] += [0.0, 0.01, 0.02, 0.03, 0.025, 0.02, 0.015]  # joint1 turns at point 3
    q[:, 1] += [0.0, 0.001, 0.002, 0.02, 0.021, 0.022, 0.023]  # joint2: slow, fast, slow
    r = f.filter(times, q, HOME)
    assert r.fault is None and r.clamped == 0
    assert r.velocities[3, 0] == 0.0
    traj = validate(NAMES, times.tolist(), r.positions, f.limits, r.velocities, required=())
    for i in range(6):
        seg = np.array([traj.sample(t, HOME) for t in np.linspace(times[i], times[i + 1], 21)])
        lo = np.minimum(r.positions[i], r.positions[i + 1]) - 1e-12
        hi = np.maximum(r.positions[i], r.positions[i + 1]) + 1e-12
        assert np.all(seg >= lo) and np.all(seg <= hi), f"overshoot on segment {i}"


def test_small_step_violation_is_clamped_and_counted(limits):
    f = make(limits, max_step_change=0.02, clamp_margin=0.01)
    times, positions = smooth_plan(n=6, speed=0.0)
    positions[3:, 2] += 0.025  # joint3 steps 0.025 between points 2 and 3 (cap 0.02)
    r = f.filter(times, positions, HOME)
    assert r.fault is None
    assert r.positions[3, 2] - r.positions[2, 2] == pytest.approx(0.02)
    assert r.positions[4, 2] == pytest.approx(positions[4, 2])  # the rate limiter catches up
    assert r.clamped == 1  # point 3; point 4 is 0.005 from the clamped point 3, within the cap
    driver_accepts(f, times, r)


def test_large_step_is_a_fault_naming_the_joint(limits):
    f = make(limits, max_step_change=0.02, clamp_margin=0.01)
    times, positions = smooth_plan(n=6, speed=0.0)
    positions[3:, 4] += 0.2
    r = f.filter(times, positions, HOME)
    assert r.fault is not None and "joint5" in r.fault and "step 2->3" in r.fault
    assert r.positions.shape == (0, 7) and r.velocities.shape == (0, 7)


def test_the_velocity_cap_binds_when_the_step_cap_is_loose(limits):
    f = make(limits, max_step_change=0.5, clamp_margin=0.5, velocity_fraction=0.5)
    times, positions = smooth_plan(n=10, speed=0.0)
    positions[:, 0] = HOME[0] + np.arange(1, 11) * 0.05  # 1.5 rad/s requested, cap 0.5 * 1 rad/s
    r = f.filter(times, positions, HOME)
    assert r.fault is None and r.clamped > 0
    steps = np.diff(r.positions[:, 0])
    assert np.all(steps <= 0.5 / RATE + 1e-12)
    assert np.all(np.abs(r.velocities[:, 0]) <= 0.5 + 1e-12)
    driver_accepts(f, times, r)


def test_slightly_outside_a_limit_is_clamped_far_outside_faults(limits):
    f = make(limits, clamp_margin=0.01, max_start_distance=1.0)
    upper = limits.upper[limits.index("joint3")]
    times = np.arange(1, 4) / RATE
    q = np.tile(HOME, (3, 1))
    q[:, 2] = upper - 0.01
    measured = q[0].copy()
    q[2, 2] = upper + 0.005
    r = f.filter(times, q, measured)
    assert r.fault is None and r.clamped == 1 and r.positions[2, 2] == upper
    q[2, 2] = upper + 0.05
    r = f.filter(times, q, measured)
    assert r.fault is not None and "joint3" in r.fault and "outside" in r.fault


def test_first_point_far_from_the_measured_state(limits):
    f = make(limits, max_start_distance=0.1, clamp_margin=0.02, max_step_change=0.2)
    times, positions = smooth_plan(n=5, speed=0.0)
    measured = HOME.copy()
    measured[1] -= 0.11  # first point 0.11 from measured: clamped to 0.1
    r = f.filter(times, positions, measured)
    assert r.fault is None and r.clamped >= 1
    assert r.positions[0, 1] == pytest.approx(measured[1] + 0.1)
    measured[1] = HOME[1] - 0.2  # 0.2 away: beyond cap + margin
    r = f.filter(times, positions, measured)
    assert r.fault is not None and "joint2" in r.fault and "measured" in r.fault


def test_the_gripper_is_clamped_into_its_range_and_left_out_of_the_start_check(limits):
    f = make(limits, max_start_distance=0.1, clamp_margin=0.0)
    times, positions = smooth_plan(n=40, speed=0.0)
    positions[:, 6] = 1.2  # "more than closed"
    measured = HOME.copy()
    measured[6] = 0.4  # gripper blocked by an object: far from its command, not a fault
    r = f.filter(times, positions, measured)
    assert r.fault is None
    g = r.positions[:, 6]
    assert g.max() == pytest.approx(0.85)  # reaches the range limit ...
    assert np.all(np.diff(g) <= 1.5 / RATE + 1e-12)  # ... at no more than its velocity cap
    driver_accepts(f, times, r)


def test_gripper_step_cap_is_a_parameter(limits):
    f = make(limits, gripper_max_step_change=0.01)
    times, positions = smooth_plan(n=5, speed=0.0)
    positions[1:, 6] = 0.6
    r = f.filter(times, positions, HOME)
    assert r.fault is None
    np.testing.assert_allclose(np.diff(r.positions[:, 6]), 0.01)


@pytest.mark.parametrize(
    ("where", "value", "words"),
    [
        ("positions", np.nan, "non-finite action"),
        ("positions", np.inf, "non-finite action"),
        ("measured", np.nan, "measured state"),
        ("times", np.nan, "times"),
    ],
)
def test_non_finite_input_is_a_fault_never_a_number(limits, where, value, words):
    f = make(limits)
    times, positions = smooth_plan()
    measured = HOME.copy()
    if where == "positions":
        positions[4, 1] = value
    elif where == "measured":
        measured[2] = value
    else:
        times[3] = value
    r = f.filter(times, positions, measured)
    assert r.fault is not None and words in r.fault
    assert r.positions.size == 0 and r.velocities.size == 0


def test_nan_in_the_gripper_is_a_fault_too(limits):
    f = make(limits)
    times, positions = smooth_plan()
    positions[2, 6] = np.nan
    r = f.filter(times, positions, HOME)
    assert r.fault is not None and GRIPPER_JOINT in r.fault


def test_times_must_increase_and_the_plan_must_not_be_empty(limits):
    f = make(limits)
    times, positions = smooth_plan()
    times[5] = times[4]
    assert "increasing" in f.filter(times, positions, HOME).fault
    assert "empty" in f.filter(np.zeros(0), np.zeros((0, 7)), HOME).fault


def test_wrong_shapes_raise(limits):
    f = make(limits)
    times, positions = smooth_plan()
    with pytest.raises(ValueError, match="positions"):
        f.filter(times, positions[:, :6], HOME)
    with pytest.raises(ValueError, match="measured"):
        f.filter(times, positions, HOME[:6])


def test_a_single_point_plan_is_sent_at_rest(limits):
    f = make(limits)
    r = f.filter(np.array([0.05]), HOME[None] + 0.01, HOME)
    assert r.fault is None and r.positions.shape == (1, 7)
    np.testing.assert_array_equal(r.velocities, 0.0)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 50),
    scale=st.sampled_from([0.001, 0.02, 0.1, 1.0, 10.0]),
    margin=st.sampled_from([0.0, 0.01, 0.1, 1.0]),
    step=st.sampled_from([0.005, 0.02, 0.2]),
    frac=st.sampled_from([0.1, 0.5, 1.0]),
    gap_kind=st.sampled_from(["regular", "jitter"]),
)
def test_output_is_always_safe_or_a_fault(seed, n, scale, margin, step, frac, gap_kind):
    limits = JointLimits.from_yaml()
    f = make(limits, max_step_change=step, clamp_margin=margin, velocity_fraction=frac)
    rng = np.random.default_rng(seed)
    gaps = np.full(n, 1 / RATE) if gap_kind == "regular" else rng.uniform(0.001, 0.2, n)
    times = 50.0 + np.cumsum(gaps)
    positions = HOME + np.cumsum(rng.normal(0, scale, (n, 7)), axis=0) / np.sqrt(n)
    measured = HOME + rng.normal(0, scale * 0.1, 7)
    r = f.filter(times, positions, measured)
    if r.fault is not None:
        assert r.positions.shape == (0, 7)
        return
    q, v = r.positions, r.velocities
    assert q.shape == v.shape == (n, 7) and np.all(np.isfinite(q)) and np.all(np.isfinite(v))
    assert np.all(q >= f.limits.lower) and np.all(q <= f.limits.upper)
    vmax = f.limits.max_velocity * frac
    assert np.all(np.abs(v) <= vmax + 1e-9)
    arm = slice(0, 6)
    assert np.all(np.abs(q[0, arm] - measured[arm]) <= 0.1 + 1e-9)
    if n > 1:
        cap = np.minimum(np.array([step] * 6 + [np.inf]), vmax * np.diff(times)[:, None])
        assert np.all(np.abs(np.diff(q, axis=0)) <= cap + 1e-9)
    # Every change made is bounded by the margin plus what earlier clamps carried along, and counted.
    assert (r.clamped == 0) == np.array_equal(q, positions)
    driver_accepts(f, times, r)

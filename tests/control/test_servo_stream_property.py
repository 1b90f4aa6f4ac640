"""Property: whatever valid trajectories arrive, and whenever they replace each other, the
ServoStreamer's command stream stays finite, inside the position limits and within the velocity and
acceleration caps (checked on finite differences of the stream itself).

Hypothesis draws the scenario (joint count, cycle timing, replacement pattern, timing family) and a
seed; the arrays of each example (limits, caps, points, times, arrival steps) come from that seed,
which keeps one example to ~1 ms so 10 000 of them fit the test budget on 2 cores.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evo1_ros.control.limits import JointLimits
from evo1_ros.control.servo_stream import ServoStreamer
from evo1_ros.control.trajectory import validate

N_STEPS = 16
# Gaps between points: degenerate-but-valid (1e-9 s) to long; "normal" = policy-like 10-100 ms.
GAP_FAMILIES = {
    "garbage": np.array([1e-9, 1e-7, 1e-5, 1e-3, 0.004, 0.02, 0.3, 3.0]),
    "normal": np.array([0.01, 0.033, 0.05, 0.1]),
    "tiny": np.array([1e-9, 1e-8, 1e-6]),
}
FIRST_TIMES = np.array([0.0, 1e-9, 0.004, 0.03, 0.2, 0.6])
START_OFFSETS = [None, -0.3, -0.01, 0.0, 0.004, 0.05, 0.2]
# Replacement patterns: how many trajectories arrive, and whether "stop" (empty) ones are mixed in.
PATTERNS = {"single": (1, False), "replace": (2, False), "replace_many": (4, False), "with_stop": (3, True)}


@settings(max_examples=10000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**63 - 1),
    n_joints=st.integers(1, 3),
    dt_mode=st.sampled_from(["fast", "slow", "jitter"]),
    pattern=st.sampled_from(sorted(PATTERNS)),
    gaps=st.sampled_from(sorted(GAP_FAMILIES)),
)
def test_stream_never_leaves_limits_or_caps(seed, n_joints, dt_mode, pattern, gaps):
    rng = np.random.default_rng(seed)
    lower = rng.uniform(-3.0, 1.0, n_joints)
    upper = lower + rng.choice([0.02, 0.3, 2.0, 6.0], n_joints) * rng.uniform(0.5, 1.0, n_joints)
    vmax = rng.choice([0.05, 0.5, 1.0, 3.14], n_joints) * rng.uniform(0.5, 1.0, n_joints)
    amax = rng.choice([0.2, 2.0, 10.0, 50.0], n_joints) * rng.uniform(0.5, 1.0, n_joints)
    names = [f"j{i}" for i in range(n_joints)]
    limits = JointLimits.create(names, lower, upper, vmax, amax)
    dts = {"fast": np.full(N_STEPS, 0.004), "slow": np.full(N_STEPS, 0.03)}.get(dt_mode)
    if dts is None:
        dts = rng.uniform(0.002, 0.03, N_STEPS)

    n_traj, with_stop = PATTERNS[pattern]
    arrivals = np.sort(rng.integers(0, N_STEPS, n_traj))
    arrivals[0] = 0
    queue: dict[int, list] = {}
    for k, step_idx in enumerate(arrivals):
        if with_stop and k == 1:
            traj = validate(names, [], np.zeros((0, n_joints)), limits)
        else:
            n_pts = int(rng.integers(1, 5))
            times = FIRST_TIMES[rng.integers(len(FIRST_TIMES))] + np.concatenate(
                [[0.0], np.cumsum(rng.choice(GAP_FAMILIES[gaps], n_pts - 1))]
            )
            if np.any(np.diff(times) <= 0):  # a gap below float resolution after summing
                continue
            pts = rng.uniform(lower - 5e-4, upper + 5e-4, (n_pts, n_joints))  # within tolerance
            vel = rng.uniform(-vmax, vmax, pts.shape) if rng.random() < 0.5 else None
            order = rng.permutation(n_joints)  # any column order: validate reorders
            traj = validate(
                [names[i] for i in order],
                times,
                pts[:, order],
                limits,
                None if vel is None else vel[:, order],
            )
        start_off = START_OFFSETS[rng.integers(len(START_OFFSETS))]
        queue.setdefault(int(step_idx), []).append((start_off, traj))

    q0 = rng.uniform(lower, upper)
    streamer = ServoStreamer(limits, q0)
    now = 10.0
    stream = [q0]
    for k in range(N_STEPS):
        for start_off, traj in queue.get(k, []):
            streamer.set_trajectory(traj, None if start_off is None else now + start_off, now)
        now += float(dts[k])
        stream.append(streamer.step(now, float(dts[k])))

    q = np.array(stream)
    assert np.isfinite(q).all()
    assert (q >= lower - 1e-12).all() and (q <= upper + 1e-12).all(), (q, lower, upper)
    v = np.diff(q, axis=0) / dts[:, None]  # the stream starts at rest
    assert (np.abs(v) <= vmax * (1 + 1e-9) + 1e-9).all(), (v, vmax)
    acc = np.diff(np.vstack([np.zeros(n_joints), v]), axis=0) / dts[:, None]
    assert (np.abs(acc) <= amax * (1 + 1e-7) + 1e-6).all(), (acc, amax)

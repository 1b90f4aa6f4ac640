"""ChunkScheduler with a fake clock: which action runs at which tick, latency compensation, blending
math, the request threshold, drops, and hold -> resume without a jump."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evo1_ros.control.chunk_scheduler import (
    BEFORE_RESET,
    ELAPSED,
    FIRST,
    NOT_FINITE,
    REPLACED,
    RESUMED,
    STALE,
    BlendMode,
    ChunkScheduler,
    SchedulerConfig,
    parse_blend,
)

RATE = 10.0  # Hz: one step every 0.1 s keeps the arithmetic readable
P = 1.0 / RATE


def tagged_chunk(tag: float, h: int = 50, d: int = 2) -> np.ndarray:
    """Chunk whose step k holds ``tag + k`` in every joint, so a value names its chunk and step."""
    return (tag + np.arange(h, dtype=float))[:, None] * np.ones((1, d))


def ticks(t0: float, n: int) -> list[float]:
    return [t0 + i * P for i in range(n)]


def make(**kw) -> ChunkScheduler:
    kw.setdefault("control_rate", RATE)
    return ChunkScheduler(SchedulerConfig(**kw))


# -- config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"control_rate": 0.0}, "control_rate"),
        ({"control_rate": float("nan")}, "control_rate"),
        ({"chunk_threshold": 1.5}, "chunk_threshold"),
        ({"n_action_steps": 0}, "n_action_steps"),
        ({"n_action_steps": 2.5}, "n_action_steps"),
        ({"blend": "average"}, "none, weighted, crossfade"),
        ({"old_weight": -0.1}, "old_weight"),
        ({"crossfade_steps": 0}, "crossfade_steps"),
        ({"resume_steps": -1}, "resume_steps"),
        ({"tick_tolerance": 0.7}, "tick_tolerance"),
    ],
)
def test_config_rejects_bad_values_with_the_field_name(kwargs, message):
    kwargs.setdefault("control_rate", RATE)
    with pytest.raises(ValueError, match=message):
        SchedulerConfig(**kwargs)


def test_blend_accepts_its_string_value():
    assert SchedulerConfig(control_rate=RATE, blend="Crossfade").blend is BlendMode.CROSSFADE
    assert parse_blend("none") is BlendMode.NONE


# -- ticks and latency compensation -----------------------------------------------------------------
def test_steps_run_at_their_due_ticks_and_elapsed_steps_are_dropped():
    s = make(blend="none", n_action_steps=10)
    arrival = s.add_chunk(tagged_chunk(0.0), obs_time=0.0, now=0.25)
    assert arrival.accepted and arrival.reason == FIRST
    # Steps 0 and 1 were due before the arrival; step 2 (due 0.2) is the one running now.
    assert arrival.dropped_elapsed == 2 and arrival.used_steps == 8
    assert s.action_at(0.25)[0] == 2.0
    executed = [s.action_at(t) for t in ticks(0.3, 9)]
    assert [a[0] for a in executed[:7]] == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]  # capped at n_action_steps
    assert executed[7] is None and executed[8] is None  # ran out: hold


def test_a_tick_slightly_early_still_runs_its_step():
    s = make(blend="none", tick_tolerance=0.25)
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.01)
    assert s.action_at(0.5 - 0.2 * P)[0] == 5.0  # early by 0.2 periods: step 5
    assert s.action_at(0.5 - 0.3 * P)[0] == 4.0  # early by 0.3 periods: still step 4
    assert s.action_at(0.5 + 0.7 * P)[0] == 5.0  # late ticks keep the step until the next is due


@pytest.mark.parametrize("latency", [0.0, 0.04, 0.1, 0.26, 0.99, 2.3])
def test_latency_compensation_keeps_exactly_the_steps_not_yet_due(latency):
    s = make(blend="none", n_action_steps=50)
    obs = 10.0
    now = obs + latency
    arrival = s.add_chunk(tagged_chunk(0.0), obs, now)
    due_now = int(np.floor(latency * RATE + 0.25 + 1e-9))  # index of the step running at `now`
    assert arrival.dropped_elapsed == due_now
    assert s.action_at(now)[0] == due_now
    times, actions = s.plan(now)
    assert times[0] > now and np.all(np.diff(times) > 0)
    np.testing.assert_allclose(times, obs + actions[:, 0] * P)  # step k stays due at obs + k/rate
    assert s.remaining_steps(now) == len(times) == 50 - due_now - 1
    assert arrival.latency == pytest.approx(latency)


def test_n_action_steps_caps_how_much_of_a_chunk_is_used():
    s = make(n_action_steps=20)
    s.add_chunk(tagged_chunk(0.0, h=50), 0.0, 0.0)
    times, actions = s.plan(0.0)
    assert actions[-1, 0] == 19.0 and len(times) == 19


def test_plan_and_action_are_empty_before_any_chunk():
    s = make()
    assert s.action_at(0.0) is None
    times, actions = s.plan(0.0)
    assert times.shape == (0,) and actions.shape[0] == 0
    assert s.remaining_steps(0.0) == 0 and not s.has_plan


# -- request threshold ------------------------------------------------------------------------------
def test_requests_follow_the_threshold_and_one_request_at_a_time():
    s = make(chunk_threshold=0.5, n_action_steps=10)
    assert s.should_request(0.0)  # empty plan
    s.mark_requested(0.0)
    assert not s.should_request(0.0) and s.requests_outstanding == 1
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)  # plan: steps 1..9 remaining at t=0
    assert s.requests_outstanding == 0
    asks = {round(t, 2): s.should_request(t) for t in ticks(0.0, 12)}
    # remaining at tick k is 9 - k; asks once remaining < 5, i.e. from tick 5 on.
    assert [k for k, v in asks.items() if v] == [round(k * P, 2) for k in range(5, 12)]
    s.mark_requested(0.5)
    assert not s.should_request(0.6)
    assert s.request_age(0.8) == pytest.approx(0.3)
    s.request_failed()
    assert s.should_request(0.6) and s.request_age(0.8) is None
    assert s.counters.requests_failed == 1 and s.counters.requests_made == 2


def test_threshold_zero_asks_only_when_the_plan_ran_out():
    s = make(chunk_threshold=0.0, n_action_steps=5)
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)
    assert [s.should_request(t) for t in ticks(0.0, 6)] == [False] * 4 + [True, True]


def test_threshold_one_asks_at_every_tick():
    s = make(chunk_threshold=1.0, n_action_steps=5)
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)
    assert all(s.should_request(t) for t in ticks(0.0, 6))


# -- blending -----------------------------------------------------------------------------------------
def overlap_case(mode: str, **kw) -> tuple[ChunkScheduler, np.ndarray, np.ndarray, float]:
    """Chunk A (values 0..) observed at 0, chunk B (values 100..) observed at 0.5 arriving at 0.72."""
    s = make(blend=mode, n_action_steps=10, **kw)
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)
    arrival = s.add_chunk(tagged_chunk(100.0), 0.5, 0.72)
    assert arrival.accepted and arrival.reason == REPLACED and arrival.dropped_elapsed == 2
    now = 0.72
    times, actions = s.plan(now)
    return s, times, actions[:, 0], now


def test_blend_none_switches_to_the_new_chunk():
    s, _times, values, now = overlap_case("none")
    np.testing.assert_allclose(values, [103, 104, 105, 106, 107, 108, 109])
    assert s.action_at(now)[0] == 102.0  # the new chunk's current step replaces the old one at once
    assert s.last_arrival.blended_steps == 0


def test_blend_weighted_is_lerobots_weighted_average_on_overlapping_steps():
    s, _times, values, _ = overlap_case("weighted")
    # Old plan A covers steps due at 0.7, 0.8, 0.9 (A values 7, 8, 9); B there is 102, 103, 104.
    expected = [0.3 * 8 + 0.7 * 103, 0.3 * 9 + 0.7 * 104, 105, 106, 107, 108, 109]
    np.testing.assert_allclose(values, expected)
    assert s.action_at(0.72)[0] == pytest.approx(0.3 * 7 + 0.7 * 102)
    assert s.last_arrival.blended_steps == 3


def test_blend_weighted_old_weight_is_a_parameter():
    _, _, values, _ = overlap_case("weighted", old_weight=0.5)
    np.testing.assert_allclose(values[:2], [0.5 * 8 + 0.5 * 103, 0.5 * 9 + 0.5 * 104])


def test_blend_crossfade_ramps_linearly_over_the_overlap():
    s, _, values, _ = overlap_case("crossfade")
    # Overlap of 3 steps (0.7, 0.8, 0.9): new weight 1/4, 2/4, 3/4, then the new chunk alone.
    assert s.action_at(0.72)[0] == pytest.approx(0.75 * 7 + 0.25 * 102)
    np.testing.assert_allclose(values, [0.5 * 8 + 0.5 * 103, 0.25 * 9 + 0.75 * 104, 105, 106, 107, 108, 109])


def test_crossfade_steps_caps_the_fade_length():
    s = make(blend="crossfade", crossfade_steps=2, n_action_steps=50)
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)
    s.add_chunk(tagged_chunk(100.0), 1.0, 1.0)  # overlap: steps due 1.0 .. 4.9
    _times, actions = s.plan(1.0)
    w = np.array([2 / 3, 1.0, 1.0])
    old = np.array([11.0, 12.0, 13.0])
    new = np.array([101.0, 102.0, 103.0])
    np.testing.assert_allclose(actions[:3, 0], (1 - w) * old + w * new)
    assert s.last_arrival.blended_steps == 2


def test_blending_samples_the_old_plan_between_its_steps_when_grids_are_offset():
    s = make(blend="weighted", n_action_steps=50)
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)  # old plan: value k at time k * 0.1
    s.add_chunk(tagged_chunk(100.0), 0.55, 0.55)  # new grid at 0.55 + k * 0.1: old value there k + 5.5
    times, actions = s.plan(0.55)
    old = times * RATE  # linear in time
    new = 100.0 + np.round((times - 0.55) * RATE)
    overlap = times <= 4.9 + 0.25 * P
    np.testing.assert_allclose(actions[overlap, 0], 0.3 * old[overlap] + 0.7 * new[overlap])
    np.testing.assert_allclose(actions[~overlap, 0], new[~overlap])


@pytest.mark.parametrize("mode", ["weighted", "crossfade"])
def test_blending_makes_the_switch_jump_smaller_than_switching(mode):
    def jump(m: str) -> float:
        s = make(blend=m, n_action_steps=10)
        s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)
        before = s.action_at(0.7)
        s.add_chunk(tagged_chunk(100.0), 0.5, 0.72)
        return float(np.max(np.abs(s.action_at(0.8) - before)))

    assert jump(mode) < 0.8 * jump("none")


# -- drops --------------------------------------------------------------------------------------------
def test_a_chunk_with_every_step_past_is_dropped_and_counted():
    s = make(n_action_steps=10)
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)
    arrival = s.add_chunk(tagged_chunk(100.0), 0.5, 0.5 + 0.95)  # its last step (0.5 + 0.9) is past
    assert not arrival.accepted and arrival.reason == ELAPSED and arrival.used_steps == 0
    assert s.chunks_dropped == 1 and s.counters.reasons[ELAPSED] == 1
    assert s.action_at(0.85)[0] == 8.0  # the running plan is untouched


def test_stale_and_pre_reset_chunks_are_dropped():
    s = make()
    s.add_chunk(tagged_chunk(0.0), 1.0, 1.05)
    assert s.add_chunk(tagged_chunk(100.0), 0.9, 1.1).reason == STALE
    assert s.add_chunk(tagged_chunk(100.0), 1.0, 1.1).reason == STALE  # same observation twice
    s.reset(now=2.0)
    assert s.action_at(2.0) is None and s.plan(2.0)[0].size == 0
    late = s.add_chunk(tagged_chunk(200.0), 1.5, 2.1)  # computed before the stop
    assert not late.accepted and late.reason == BEFORE_RESET
    fresh = s.add_chunk(tagged_chunk(300.0), 2.05, 2.1)
    assert fresh.accepted and fresh.reason == FIRST
    assert s.chunks_accepted == 2 and s.chunks_dropped == 3


def test_a_non_finite_chunk_is_dropped_not_blended():
    s = make(blend="weighted")
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)
    bad = tagged_chunk(100.0)
    bad[7, 1] = np.nan
    arrival = s.add_chunk(bad, 0.5, 0.6)
    assert not arrival.accepted and arrival.reason == NOT_FINITE
    assert np.all(np.isfinite(s.plan(0.6)[1]))


def test_wiring_errors_raise():
    s = make()
    with pytest.raises(ValueError, match="H, D"):
        s.add_chunk(np.zeros(5), 0.0, 0.0)
    s.add_chunk(np.zeros((5, 7)), 0.0, 0.0)
    with pytest.raises(ValueError, match="7"):
        s.add_chunk(np.zeros((5, 6)), 0.1, 0.1)


def test_observation_stamped_in_the_future_counts_as_taken_now():
    s = make(blend="none")
    arrival = s.add_chunk(tagged_chunk(0.0), obs_time=5.3, now=5.0)  # clock skew between hosts
    assert arrival.accepted and arrival.dropped_elapsed == 0
    assert s.action_at(5.0)[0] == 0.0 and s.action_at(5.1)[0] == 1.0


# -- hold and resume ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["none", "weighted", "crossfade"])
def test_exhausted_plan_holds_then_resumes_without_a_jump(mode):
    s = make(blend=mode, n_action_steps=10, resume_steps=5)
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)  # last step 9 due at 0.9
    assert s.action_at(0.9)[0] == 9.0
    assert s.action_at(1.0) is None and s.action_at(1.5) is None  # hold
    assert s.plan(1.5)[0].size == 0 and s.should_request(1.5)
    arrival = s.add_chunk(tagged_chunk(60.0), 1.4, 1.5)  # far away from the held 9.0
    assert arrival.accepted and arrival.reason == RESUMED and arrival.blended_steps == 5
    executed = [9.0] + [s.action_at(t)[0] for t in ticks(1.5, 9)]  # steps 1..9 of the new chunk
    steps = np.abs(np.diff(executed))
    # Each step covers a sixth of the gap between the held action and the (moving) new chunk, plus the
    # chunk's own motion of 1 per step; the largest gap is at the ramp's end (step 6 of the chunk).
    gap = (60.0 + 6) - 9.0
    assert steps.max() <= gap / 6 + 1.0 + 1e-9
    assert steps[0] == pytest.approx((61.0 - 9.0) / 6)  # vs a jump of 52 without the ramp
    assert executed[-4:] == pytest.approx([66.0, 67.0, 68.0, 69.0])  # then the new chunk itself
    assert s.action_at(2.4) is None


def test_resume_ramp_can_be_switched_off():
    s = make(blend="crossfade", n_action_steps=10, resume_steps=0)
    s.add_chunk(tagged_chunk(0.0), 0.0, 0.0)
    s.add_chunk(tagged_chunk(60.0), 1.4, 1.5)
    assert s.action_at(1.5)[0] == 61.0


def test_reset_with_a_hold_position_ramps_the_next_chunk_from_it():
    s = make(blend="none", n_action_steps=20, resume_steps=4)
    s.reset(now=0.0, hold=np.array([-10.0, -10.0]))
    arrival = s.add_chunk(tagged_chunk(0.0), 0.1, 0.1)
    assert arrival.reason == RESUMED
    w = np.arange(1, 5) / 5
    np.testing.assert_allclose(s.plan(0.1)[1][:3, 0], (1 - w[1:]) * -10.0 + w[1:] * np.arange(1, 4))


# -- a closed sequence: which action runs at which tick ----------------------------------------------
def test_tick_by_tick_sequence_for_given_arrival_times():
    """A 10 Hz loop with 0.25 s inference latency and blend none: the exact step run at each tick."""
    s = make(blend="none", n_action_steps=10, chunk_threshold=0.5)
    pending: list[tuple[float, float, float]] = []  # (arrival time, obs time, tag)
    tag = 0
    executed: list[float | None] = []
    for t in ticks(0.0, 30):
        for item in [p for p in pending if p[0] <= t + 1e-9]:
            pending.remove(item)
            s.add_chunk(tagged_chunk(item[2]), item[1], item[0])
        executed.append(None if (a := s.action_at(t)) is None else float(a[0]))
        if s.should_request(t):
            s.mark_requested(t)
            tag += 1000
            pending.append((t + 0.25, t, float(tag)))
    # Chunk 1000 (obs 0.0) arrives at 0.25, when its step 2 is due: ticks 0.3 .. 0.7 run its steps
    # 3 .. 7. At tick 0.5 only 4 steps (< 0.5 * 10) remain: request; chunk 2000 (obs 0.5) arrives at
    # 0.75 and takes over at tick 0.8 with its step 3, and so on every 0.5 s.
    expected = [None] * 3 + [tag + 3.0 + k for tag in (1000, 2000, 3000, 4000, 5000) for k in range(5)]
    assert executed[:28] == expected
    assert s.chunks_accepted == 6 and s.chunks_dropped == 0


# -- properties ---------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(["none", "weighted", "crossfade"]),
    latencies=st.lists(st.floats(0.0, 1.5), min_size=1, max_size=6),
    gaps=st.lists(st.floats(0.01, 1.5), min_size=6, max_size=6),
    n_steps=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
)
def test_plan_stays_a_convex_mix_of_the_chunks_and_well_timed(mode, latencies, gaps, n_steps, seed):
    rng = np.random.default_rng(seed)
    s = make(blend=mode, n_action_steps=n_steps, resume_steps=3)
    obs = 0.0
    lo, hi = np.inf, -np.inf
    for latency, gap in zip(latencies, gaps, strict=False):
        chunk = rng.uniform(-1, 1, size=(30, 3))
        lo, hi = min(lo, chunk.min()), max(hi, chunk.max())
        now = obs + latency
        arrival = s.add_chunk(chunk, obs, now)
        times, actions = s.plan(now)
        assert np.all(times > now) and np.all(np.diff(times) > 0)
        assert len(times) == s.remaining_steps(now) <= n_steps - 1
        assert np.all(np.isfinite(actions))
        assert np.all(actions >= lo - 1e-9) and np.all(actions <= hi + 1e-9)
        if arrival.accepted:
            assert arrival.dropped_elapsed + arrival.used_steps == min(30, n_steps)
            if mode == "none" and arrival.reason != RESUMED:
                k0 = arrival.dropped_elapsed + 1
                np.testing.assert_allclose(actions, chunk[k0 : k0 + len(times)])
        else:
            assert arrival.reason == ELAPSED
        a = s.action_at(now)
        assert a is None or (np.all(np.isfinite(a)) and a.shape == (3,))
        obs = now + gap

"""GripperCommandFilter: deduplication by epsilon and rate limiting, with held-back changes sent later."""

from __future__ import annotations

import itertools

import pytest

from evo1_ros.control.gripper_command import GripperCommandFilter
from evo1_ros.control.limits import GripperPulseMap


def test_first_command_always_goes_out() -> None:
    f = GripperCommandFilter(epsilon=2.0, rate_hz=10.0)
    assert f.last_sent is None
    assert f.update(850.0, 0.0) == 850.0
    assert f.last_sent == 850.0


def test_small_changes_are_deduplicated() -> None:
    f = GripperCommandFilter(epsilon=2.0, rate_hz=10.0)
    f.update(400.0, 0.0)
    assert f.update(401.5, 1.0) is None
    assert f.update(398.0, 2.0) is None  # exactly epsilon: not "changed by more than"
    assert f.update(397.9, 3.0) == 397.9


def test_rate_limit_holds_back_then_sends_latest() -> None:
    f = GripperCommandFilter(epsilon=0.5, rate_hz=10.0)
    assert f.update(800.0, 0.00) == 800.0
    assert f.update(700.0, 0.05) is None  # too soon
    assert f.update(600.0, 0.09) is None
    assert f.update(600.0, 0.10) == 600.0  # interval over: the newest target goes out
    sent = [f.update(600.0 - k, 0.10 + 0.01 * k) for k in range(1, 100)]
    times = [0.10 + 0.01 * k for k, v in enumerate(sent, start=1) if v is not None]
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(times))
    assert len(times) == 9


def test_reset_and_clock_jump_back() -> None:
    f = GripperCommandFilter(epsilon=1.0, rate_hz=1.0)
    f.update(100.0, 10.0)
    assert f.update(200.0, 10.5) is None
    assert f.update(200.0, 3.0) == 200.0  # clock went back (sim reset): not stuck for 7 s
    f.reset()
    assert f.update(200.0, 3.1) == 200.0  # after reset even an unchanged value is sent


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        GripperCommandFilter(epsilon=-1.0, rate_hz=10.0)
    with pytest.raises(ValueError):
        GripperCommandFilter(epsilon=1.0, rate_hz=0.0)
    f = GripperCommandFilter(epsilon=1.0, rate_hz=10.0)
    with pytest.raises(ValueError):
        f.update(float("nan"), 0.0)


def test_works_with_the_configured_pulse_map() -> None:
    g = GripperPulseMap.from_yaml()
    f = GripperCommandFilter(g.epsilon_pulses, g.rate_hz)
    sent = [f.update(g.rad_to_pulses(0.85 * k / 100), 0.004 * k) for k in range(101)]  # 250 Hz close
    out = [s for s in sent if s is not None]
    assert out[0] == 850.0
    assert len(out) <= 0.4 * g.rate_hz + 1

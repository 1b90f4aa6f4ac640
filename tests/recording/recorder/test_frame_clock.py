"""The frame clock ticks at k/fps, sleeps to deadlines and skips (counts) ticks a slow caller missed."""

from __future__ import annotations

import pytest

from recording.recorder.frame_clock import FrameClock


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.t += dt


def test_on_time_caller_gets_every_tick() -> None:
    ft = FakeTime()
    clock = FrameClock(10, now=ft.now, sleep=ft.sleep)
    clock.start()
    ticks = []
    for _ in range(5):
        ticks.append(clock.wait())
        ft.t += 0.03  # work shorter than a period
    assert [t.index for t in ticks] == [0, 1, 2, 3, 4]
    assert all(t.skipped == 0 for t in ticks) and clock.skipped_total == 0
    assert ticks[3].deadline == pytest.approx(100.3)
    assert ft.sleeps[1] == pytest.approx(0.07)


def test_slow_caller_skips_and_counts() -> None:
    ft = FakeTime()
    clock = FrameClock(10, now=ft.now, sleep=ft.sleep)
    clock.start()
    assert clock.wait().index == 0
    ft.t += 0.35  # missed ticks 1 and 2; tick 3 is due now
    t = clock.wait()
    assert (t.index, t.skipped) == (3, 2)
    assert t.lateness == pytest.approx(0.05)
    ft.t += 0.12  # a bit late for tick 4 but tick 5 not yet due: no skip
    t = clock.wait()
    assert (t.index, t.skipped) == (4, 0)
    assert clock.skipped_total == 2


def test_bad_fps() -> None:
    with pytest.raises(ValueError, match="fps must be positive"):
        FrameClock(0)

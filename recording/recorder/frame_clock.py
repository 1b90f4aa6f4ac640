"""A fixed-rate frame clock: tick k is due at t0 + k/fps.

The recorder samples every stream once per tick, so recorded timestamps can be the ideal
``frame_index / fps``. When the caller falls behind by more than a tick, the missed ticks are
skipped (not bunched up) and counted, which is the dropped-frame figure a recorder reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    """One tick of the clock."""

    index: int  # tick number since start (includes skipped ticks)
    deadline: float  # when it was due, on the clock's time source
    skipped: int  # ticks skipped just before this one because the caller was late
    lateness: float  # seconds between the deadline and the moment wait() returned


class FrameClock:
    """Sleep until the next tick of a ``fps`` Hz clock; count ticks missed by a slow caller."""

    def __init__(
        self,
        fps: float,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        self.fps = float(fps)
        self.period = 1.0 / self.fps
        self._now = now
        self._sleep = sleep
        self._t0: float | None = None
        self._next = 0
        self.skipped_total = 0

    def start(self, t0: float | None = None) -> None:
        """Tick 0 is due at ``t0`` (default: now)."""
        self._t0 = self._now() if t0 is None else t0
        self._next = 0
        self.skipped_total = 0

    def deadline(self, index: int) -> float:
        if self._t0 is None:
            raise RuntimeError("FrameClock.start() first")
        return self._t0 + index * self.period

    def wait(self) -> Tick:
        """Block until the next due tick and return it (skipping ticks whose successor is already due)."""
        if self._t0 is None:
            self.start()
        now = self._now()
        k = self._next
        # the latest tick already due, if we are more than one period late
        latest_due = int((now - self.deadline(0)) // self.period)
        skipped = 0
        if latest_due > k:
            skipped = latest_due - k
            k = latest_due
        due = self.deadline(k)
        if now < due:
            self._sleep(due - now)
            now = self._now()
        self._next = k + 1
        self.skipped_total += skipped
        return Tick(k, due, skipped, max(0.0, now - due))

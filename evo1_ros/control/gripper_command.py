"""Deduplicate and rate-limit gripper position commands.

Every ``set_gripper_position`` costs at least two RS-485 round trips (docs/xarm_protocol.md §7), so the
driver must not forward the 100-250 Hz servo stream to the gripper. This filter lets a command
through only when it differs from the last one sent by more than ``epsilon`` and at most
``rate_hz`` times per second; a change held back by the rate limit goes out on a later call.
"""

from __future__ import annotations

import math


class GripperCommandFilter:
    """Decides which gripper targets to send (units are the caller's: pulses or rad)."""

    def __init__(self, epsilon: float, rate_hz: float) -> None:
        """``epsilon``: smallest change worth sending; ``rate_hz``: maximum send rate (> 0)."""
        if not (math.isfinite(epsilon) and epsilon >= 0):
            raise ValueError(f"epsilon must be finite and >= 0, got {epsilon}")
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be finite and > 0, got {rate_hz}")
        self.epsilon = float(epsilon)
        self.min_interval = 1.0 / float(rate_hz)
        self._last_value: float | None = None
        self._last_time: float | None = None

    @property
    def last_sent(self) -> float | None:
        """The last value :meth:`update` let through (None before the first)."""
        return self._last_value

    def reset(self) -> None:
        """Forget what was sent, so the next target goes out at once (e.g. after re-enabling)."""
        self._last_value = None
        self._last_time = None

    def update(self, target: float, now: float) -> float | None:
        """Return ``target`` if it should be sent now, else None. Non-finite input raises."""
        if not (math.isfinite(target) and math.isfinite(now)):
            raise ValueError(f"target and now must be finite (target={target}, now={now})")
        if self._last_value is not None and abs(target - self._last_value) <= self.epsilon:
            return None
        if self._last_time is not None and self._last_time <= now < self._last_time + self.min_interval:
            return None
        self._last_value = float(target)
        self._last_time = float(now)
        return self._last_value

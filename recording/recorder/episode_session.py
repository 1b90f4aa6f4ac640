"""The recorder's episode state machine (idle -> recording -> saving -> resetting -> idle), no ROS.

Keeping the rules here (time limit, reset period, which request is allowed when, and the message
that says why not) lets them be tested without nodes, and keeps the node a thin wrapper. Phase values
equal the constants of ``evo1_msgs/RecorderStatus``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import IntEnum


class Phase(IntEnum):
    IDLE = 0
    RECORDING = 1
    SAVING = 2
    RESETTING = 3
    ERROR = 4


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused (shown to the operator as is)."""

    message: str


class EpisodeSession:
    """Phase, timing and last error of the episodes recorded by one recorder.

    ``time_limit`` (s, 0 = none): the caller should auto-save once :meth:`time_up` says so.
    ``reset_time`` (s, 0 = none): after a save or discard, starting is refused for this long so the
    scene can be reset; :meth:`tick` returns to IDLE when it is over.
    """

    def __init__(self, time_limit: float = 0.0, reset_time: float = 0.0) -> None:
        if time_limit < 0 or reset_time < 0:
            raise ValueError("time_limit and reset_time must be >= 0")
        self.time_limit = float(time_limit)
        self.reset_time = float(reset_time)
        self.phase = Phase.IDLE
        self.task = ""
        self.episode_index = 0
        self.error = ""
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._reset_until = 0.0
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ queries
    def elapsed(self, now: float) -> float:
        """Seconds since the current (or last) episode started; 0 if none."""
        if self._started_at is None:
            return 0.0
        end = now if self.phase == Phase.RECORDING or self._stopped_at is None else self._stopped_at
        return max(0.0, end - self._started_at)

    def time_up(self, now: float) -> bool:
        return self.phase == Phase.RECORDING and self.time_limit > 0 and self.elapsed(now) >= self.time_limit

    def reset_left(self, now: float) -> float:
        return max(0.0, self._reset_until - now) if self.phase == Phase.RESETTING else 0.0

    def check_start(self, now: float) -> Refusal | None:
        """None if an episode may start now, else why not."""
        self.tick(now)
        if self.phase == Phase.RECORDING:
            return Refusal(f"episode {self.episode_index} is already recording; save or discard it first")
        if self.phase == Phase.SAVING:
            return Refusal(f"episode {self.episode_index} is still being saved; wait until it is done")
        if self.phase == Phase.RESETTING:
            return Refusal(
                f"resetting the scene: {self.reset_left(now):.1f} s left before the next episode may start "
                "(reset_time parameter; 0 disables the reset period)"
            )
        return None

    def check_stop(self, what: str) -> Refusal | None:
        """None if the episode in progress may be saved/discarded, else why not."""
        if self.phase == Phase.RECORDING:
            return None
        if self.phase == Phase.SAVING:
            return Refusal(f"cannot {what}: episode {self.episode_index} is already being saved")
        hint = f" (last error: {self.error})" if self.error else ""
        return Refusal(f"cannot {what}: no episode is recording; start one first{hint}")

    # ------------------------------------------------------------------ transitions
    def start(self, now: float, task: str, episode_index: int) -> None:
        refusal = self.check_start(now)
        if refusal is not None:
            raise RuntimeError(refusal.message)
        self.phase = Phase.RECORDING
        self.task = task
        self.episode_index = episode_index
        self.error = ""
        self._started_at = now
        self._stopped_at = None

    def begin_save(self, now: float) -> None:
        refusal = self.check_stop("save")
        if refusal is not None:
            raise RuntimeError(refusal.message)
        self.phase = Phase.SAVING
        self._stopped_at = now

    def saved(self, now: float, next_index: int) -> None:
        """The save succeeded; the reset period starts."""
        self._enter_reset(now)
        self.episode_index = next_index

    def discarded(self, now: float) -> None:
        self._stopped_at = self._stopped_at or now
        self._enter_reset(now)

    def failed(self, now: float, error: str, next_index: int) -> None:
        """Saving or recording failed: the episode is gone, ERROR until the next successful start."""
        self._stopped_at = self._stopped_at or now
        self.phase = Phase.ERROR
        self.error = error
        self.episode_index = next_index

    def set_error(self, error: str) -> None:
        """Report an error that does not end an episode (e.g. a failed start)."""
        if self.phase in (Phase.IDLE, Phase.ERROR):
            self.phase = Phase.ERROR
        self.error = error

    def tick(self, now: float) -> None:
        """End the reset period when it is over."""
        if self.phase == Phase.RESETTING and now >= self._reset_until:
            self.phase = Phase.IDLE

    def _enter_reset(self, now: float) -> None:
        self._reset_until = now + self.reset_time
        self.phase = Phase.RESETTING if self.reset_time > 0 else Phase.IDLE

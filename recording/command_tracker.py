"""The commanded joint targets at any time, from a stream of JointTrajectory-like commands.

The recorder's ``action`` is what the arm was commanded at the frame's time: the trajectory's
interpolated (between points) or held (after the last point) target. Commands follow
JointTrajectoryController semantics: a new trajectory replaces the rest of the running one from its
start time; before its first point the target moves linearly from where the old command was at that
start time. Each joint is tracked on its own, so a gripper-only trajectory does not disturb the arm.
Pure Python + numpy, times in float seconds on the caller's clock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np

STEP_S = 1e-6  # width of the ramp that stands in for a jump (a point at time_from_start 0)


class CommandError(ValueError):
    """A command the tracker cannot use (the message names the problem)."""


class CommandTracker:
    """Piecewise-linear target of every joint in ``joint_names`` over time.

    ``keep_s`` bounds memory: knots older than that (relative to the newest start time) are pruned,
    keeping the last one so the held value survives.
    """

    def __init__(self, joint_names: Sequence[str], keep_s: float = 10.0) -> None:
        self.joint_names = tuple(joint_names)
        if len(set(self.joint_names)) != len(self.joint_names) or not self.joint_names:
            raise ValueError(f"joint names must be non-empty and unique, got {self.joint_names}")
        self.keep_s = float(keep_s)
        self._knots: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()
        self.last_received: float | None = None
        self.commands = 0

    def add(
        self,
        names: Sequence[str],
        start_time: float,
        times_from_start: Sequence[float],
        positions: Sequence[Sequence[float]],
        *,
        received_at: float,
        measured: Mapping[str, float] | None = None,
    ) -> None:
        """Apply one trajectory. ``start_time`` <= 0 means "start when received" (``received_at``).

        Joints the tracker does not know are ignored (a trajectory may carry extra joints); an empty
        point list means "stop": every named joint holds its target at the start time. ``measured``
        gives the start value of a joint commanded for the first time (else its first point is held
        from the start).
        """
        names = [str(n) for n in names]
        if len(set(names)) != len(names):
            raise CommandError(f"joint named twice in {names}")
        t_rel = np.asarray(list(times_from_start), dtype=float).reshape(-1)
        try:
            pos = np.asarray(positions, dtype=float).reshape(len(t_rel), len(names))
        except ValueError:
            raise CommandError(
                f"{len(t_rel)} point(s) need {len(names)} position(s) each, got {np.shape(positions)}"
            ) from None
        if not (np.all(np.isfinite(t_rel)) and np.all(np.isfinite(pos))):
            raise CommandError("time_from_start or positions contain NaN/inf")
        if t_rel.size and (t_rel[0] < 0 or np.any(np.diff(t_rel) <= 0)):
            raise CommandError(f"time_from_start must be >= 0 and strictly increasing, got {t_rel.tolist()}")
        ts = float(start_time) if start_time > 0 else float(received_at)
        with self._lock:
            for j, name in enumerate(names):
                if name not in self.joint_names:
                    continue
                self._apply(name, ts, t_rel, pos[:, j], measured)
            self.last_received = float(received_at)
            self.commands += 1

    def _apply(
        self,
        name: str,
        ts: float,
        t_rel: np.ndarray,
        values: np.ndarray,
        measured: Mapping[str, float] | None,
    ) -> None:
        old = self._knots.get(name)
        if old is not None:
            ot, ov = old
            start_value = float(np.interp(ts, ot, ov))
            keep = ot < ts - STEP_S
            kt, kv = list(ot[keep]), list(ov[keep])
        else:
            kt, kv = [], []
            start_value = None
            if measured is not None and name in measured:
                start_value = float(measured[name])
        if t_rel.size == 0:  # stop: hold where the command is at the start time
            if start_value is None:
                return
            kt.append(ts)
            kv.append(start_value)
        else:
            if start_value is not None:
                # a first point at the start time is a step: the old target holds until just before it
                kt.append(ts if t_rel[0] > 0 else ts - STEP_S)
                kv.append(start_value)
            kt.extend((ts + t_rel).tolist())
            kv.extend(values.tolist())
        t_arr, v_arr = np.asarray(kt), np.asarray(kv)
        # prune old knots, keeping the newest one before the horizon
        cut = int(np.searchsorted(t_arr, ts - self.keep_s, side="right")) - 1
        if cut > 0:
            t_arr, v_arr = t_arr[cut:], v_arr[cut:]
        self._knots[name] = (t_arr, v_arr)

    def has_all(self) -> bool:
        """True once every joint has been commanded at least once."""
        with self._lock:
            return all(n in self._knots for n in self.joint_names)

    def missing(self) -> list[str]:
        """Joints never commanded yet."""
        with self._lock:
            return [n for n in self.joint_names if n not in self._knots]

    def sample(self, t: float) -> np.ndarray | None:
        """Targets of all joints at time ``t`` (in ``joint_names`` order); None if one was never commanded."""
        out = np.empty(len(self.joint_names))
        with self._lock:
            for i, name in enumerate(self.joint_names):
                knots = self._knots.get(name)
                if knots is None:
                    return None
                out[i] = np.interp(t, knots[0], knots[1])
        return out

    def clear(self) -> None:
        with self._lock:
            self._knots.clear()
            self.last_received = None

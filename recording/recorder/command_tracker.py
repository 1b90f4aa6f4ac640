"""The commanded joint targets at any time, from a stream of JointTrajectory-like commands.

The recorder's ``action`` is what the arm was commanded at the frame's time. It listens to the
trajectories the driver *accepted* (``accepted_trajectory``: each one exactly as the driver runs it,
stamped with the absolute start the driver resolved, plus a one-point trajectory wherever the driver
stopped executing one), and samples them here with the driver's own interpolation:
:meth:`evo1_ros.control.trajectory.Trajectory.sample` (cubic Hermite when velocities are given,
linear otherwise, the lead-in from where the previous command was at the start time).

Semantics are the driver streamer's (JointTrajectoryController): a new trajectory replaces the rest
of the running one from its start time (queued ones that start later are dropped); joints it does
not name hold where the previous command had them at that moment; an empty trajectory holds every
joint there. Pure Python + numpy (no ROS, no torch), times in float seconds on the caller's clock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from evo1_ros.control.limits import JointLimits
from evo1_ros.control.trajectory import Trajectory, TrajectoryError, empty_trajectory, validate

_DERIVATIVE_S = 1e-3  # s: finite-difference step for the previous command's velocity at a hand-over


class CommandError(ValueError):
    """A command the tracker cannot use (the message names the problem)."""


@dataclass(frozen=True)
class _Segment:
    start: float  # absolute start time of the trajectory (it takes over then, as in the driver)
    traj: Trajectory
    anchor_q: np.ndarray  # every joint's target when it took over (NaN: never commanded, unknown)
    anchor_v: np.ndarray

    def sample(self, t: float) -> np.ndarray:
        out = self.anchor_q.copy()
        if self.traj.empty or t < self.start:
            return out
        idx = self.traj.indices
        out[idx] = self.traj.sample(t - self.start, self.anchor_q[idx], self.anchor_v[idx])
        return out


class CommandTracker:
    """Targets of every joint in ``joint_names`` over time, sampled like the driver samples them.

    ``keep_s`` bounds memory: trajectories replaced more than that long before the newest start time
    are forgotten (the one running at that horizon is kept, so its held value survives).
    """

    def __init__(self, joint_names: Sequence[str], keep_s: float = 10.0) -> None:
        self.joint_names = tuple(joint_names)
        if len(set(self.joint_names)) != len(self.joint_names) or not self.joint_names:
            raise ValueError(f"joint names must be non-empty and unique, got {self.joint_names}")
        self.keep_s = float(keep_s)
        n = len(self.joint_names)
        # The driver already enforced its limits: here they only give the joint order to validate().
        big = np.full(n, 1e12)
        self._limits = JointLimits.create(self.joint_names, -big, big, big, big)
        self._segments: list[_Segment] = []
        self._commanded = np.zeros(n, dtype=bool)
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
        velocities: Sequence[Sequence[float]] | None = None,
        received_at: float,
        measured: Mapping[str, float] | None = None,
    ) -> None:
        """Apply one trajectory. ``start_time`` <= 0 means "start when received" (``received_at``).

        Joints the tracker does not know are ignored (a trajectory may carry extra joints); an empty
        point list means "stop": every joint holds its target at the start time. ``velocities``
        (one row per point, or None/empty) select cubic Hermite interpolation, as in the driver.
        ``measured`` gives the start value of a joint commanded for the first time (else its first
        point is held from the start).
        """
        names = [str(n) for n in names]
        if len(set(names)) != len(names):
            raise CommandError(f"joint named twice in {names}")
        t_rel = np.asarray(list(times_from_start), dtype=float).reshape(-1)
        keep = [j for j, n in enumerate(names) if n in self.joint_names]
        try:
            pos = np.asarray(positions, dtype=float).reshape(len(t_rel), len(names))
            vel = None
            if velocities is not None and len(velocities) and any(len(row) for row in velocities):
                vel = np.asarray(velocities, dtype=float).reshape(len(t_rel), len(names))
        except ValueError:
            raise CommandError(
                f"{len(t_rel)} point(s) need {len(names)} position(s) (and velocities) each, "
                f"got {np.shape(positions)}"
            ) from None
        if not keep:
            return
        try:
            traj = validate(
                [names[j] for j in keep],
                t_rel,
                pos[:, keep],
                self._limits,
                None if vel is None else vel[:, keep],
                required=(),
            )
        except TrajectoryError as e:
            raise CommandError(str(e)) from None
        if traj.empty:
            traj = empty_trajectory(self._limits)  # stop holds every joint, as the driver does
        received_at = float(received_at)
        # The driver publishes the start it resolved, so the hand-over is at the start time.
        start = float(start_time) if start_time > 0 else received_at
        with self._lock:
            anchor_q = self._sample_locked(start)
            anchor_v = (anchor_q - self._sample_locked(start - _DERIVATIVE_S)) / _DERIVATIVE_S
            anchor_v = np.where(np.isfinite(anchor_v), anchor_v, 0.0)
            if not traj.empty:
                for i in traj.indices:  # first command of a joint: start from the measured value
                    if not self._commanded[i]:
                        name = self.joint_names[i]
                        value = None if measured is None else measured.get(name)
                        k = int(np.searchsorted(traj.indices, i))
                        anchor_q[i] = traj.positions[0, k] if value is None else float(value)
                        anchor_v[i] = 0.0
                self._commanded[traj.indices] = True
            # JTC: the new trajectory replaces everything from its start time on
            self._segments = [s for s in self._segments if s.start < start]
            self._segments.append(_Segment(start, traj, anchor_q, anchor_v))
            self._prune(start)
            self.last_received = received_at
            self.commands += 1

    def _prune(self, newest_start: float) -> None:
        horizon = newest_start - self.keep_s
        first = 0
        for k in range(1, len(self._segments)):
            if self._segments[k].start <= horizon:
                first = k
        if first:
            del self._segments[:first]

    def _sample_locked(self, t: float) -> np.ndarray:
        nan = np.full(len(self.joint_names), np.nan)
        if not self._segments:
            return nan
        seg = self._segments[0]
        for s in self._segments:
            if s.start <= t:
                seg = s
            else:
                break
        return seg.sample(t)

    def has_all(self) -> bool:
        """True once every joint has been commanded at least once."""
        with self._lock:
            return bool(self._commanded.all())

    def missing(self) -> list[str]:
        """Joints never commanded yet."""
        with self._lock:
            return [n for n, c in zip(self.joint_names, self._commanded) if not c]

    def sample(self, t: float) -> np.ndarray | None:
        """Targets of all joints at time ``t`` (in ``joint_names`` order); None if one was never commanded."""
        with self._lock:
            if not self._commanded.all():
                return None
            out = self._sample_locked(t)
        return None if not np.all(np.isfinite(out)) else out

    def clear(self) -> None:
        with self._lock:
            self._segments.clear()
            self._commanded[:] = False
            self.last_received = None

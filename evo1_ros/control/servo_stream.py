"""Clock-free core of the driver's servo streaming thread (xArm mode 1, ``set_servo_angle_j``).

Mode 1 executes every target at once at full speed, so the driver must itself send a smooth,
capped stream at 100-250 Hz (docs/xarm_protocol.md §2). This class turns trajectories (ros2_control JTC
semantics) into that stream. The caller owns the clock: it calls :meth:`ServoStreamer.step` once
per cycle with the current time and the cycle length. Every command it returns

* is finite and inside the position limits,
* moves each joint by at most ``max_velocity * dt`` and changes that velocity by at most
  ``max_acceleration * dt`` per step (finite differences of the command stream),
* keeps enough room to brake before any position limit (so the two above never conflict),

whatever trajectories arrive and whenever they replace each other. When commands end it holds the
last commanded position; it never invents a pose (no zero-pose fallback).

When a cap binds, the whole trajectory is slowed down in time together (a trajectory clock ``tau``
advancing at a rate ``r <= 1`` of the real clock), instead of capping each joint on its own: the
joints stay on the demanded path and finish together. The rate ramps up and down within the
acceleration caps and brakes on the path so that the last point is reached at rest, without the
v**2/2a overshoot a linear trajectory's abrupt end would otherwise cause. The per-joint filter
(:func:`limit_step`) still runs on every command as the hard guarantee of the caps above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evo1_ros.control.limits import JointLimits
from evo1_ros.control.trajectory import Trajectory


@dataclass
class _Active:
    traj: Trajectory
    start: float  # absolute start time of the trajectory (s)
    anchor_q: np.ndarray  # full command vector when it took over
    anchor_v: np.ndarray
    offset: float  # time from start at which it took over
    tau: float  # trajectory clock: time from start the target has reached (lags real time when slowed)
    rate: float  # d tau / dt of the last cycle, in [0, 1]
    t_last: float  # real time of the last trajectory-clock update
    target: list[float]  # full target vector at tau
    end_alpha: float  # rate acceleration the caps allow on the last stretch (1/s), for braking


def braking_speed(distance: float, max_acceleration: float, dt: float) -> float:
    """Largest speed for this step from which the joint can still stop within ``distance``.

    Solves ``v*dt + v**2 / (2*a) = d``: move this step at v, then brake at a. Braking in discrete
    steps of any length never travels further than the continuous bound v**2/(2a), so the result is
    safe even when later cycles are longer or shorter than ``dt``.
    """
    d = distance if distance > 0.0 else 0.0
    return 2.0 * d / (dt + math.sqrt(dt * dt + 2.0 * d / max_acceleration))


def closing_step(distance: float, max_acceleration: float, dt: float) -> float:
    """Largest displacement this step from which a gap of ``distance`` closes exactly at rest.

    Discrete version of the braking curve for steps of ``dt``: with u = a*dt**2, moving x now and
    then x-u, x-2u, ... covers exactly ``distance``; for distance < u this is just ``distance``, so
    a target within reach is hit exactly instead of approached asymptotically.
    """
    if distance <= 0.0:
        return 0.0
    u = max_acceleration * dt * dt
    n = math.floor((math.sqrt(1.0 + 8.0 * distance / u) - 1.0) / 2.0)
    return (distance + u * n * (n + 1) / 2.0) / (n + 1)


def limit_step(
    q: float, v: float, v_des: float, lower: float, upper: float, vmax: float, amax: float, dt: float
) -> tuple[float, float]:
    """One joint, one cycle: the next (position, velocity) closest to ``v_des`` within every cap.

    The velocity is kept within ``vmax``, within ``amax*dt`` of ``v``, and below the braking speed
    towards both position limits; these intervals always overlap when the previous step obeyed
    them, so no cap is ever traded against another. A joint found outside its limits (after a
    reset there) is never pushed further out.
    """
    lo_lim = lower if lower < q else q
    hi_lim = upper if upper > q else q
    dv = amax * dt
    v_lo = max(v - dv, -vmax, -braking_speed(q - lo_lim, amax, dt))
    v_hi = min(v + dv, vmax, braking_speed(hi_lim - q, amax, dt))
    if not math.isfinite(v_des):  # cannot happen with validated input; brake if it does
        v_des = 0.0
    v_new = min(max(v_des, v_lo), v_hi)
    q_new = min(max(q + v_new * dt, lo_lim), hi_lim)
    return q_new, (q_new - q) / dt


class ServoStreamer:
    """Active trajectory + last commanded state; produces the capped per-cycle joint command.

    Joint order and caps come from ``limits`` (all its joints, e.g. joint1..joint6 + drive_joint).
    Not thread-safe: call it from the streaming thread only (the driver hands trajectories over
    with a lock or queue).
    """

    def __init__(self, limits: JointLimits, initial_positions: np.ndarray) -> None:
        """Start at rest at ``initial_positions`` (the measured joint state; required, finite)."""
        self._limits = limits
        # per-joint floats: the per-cycle filter runs on Python floats (faster than numpy for 7 joints)
        self._lims = tuple(
            [float(x) for x in arr]
            for arr in (limits.lower, limits.upper, limits.max_velocity, limits.max_acceleration)
        )
        self._q = np.zeros(limits.size)
        self._v = np.zeros(limits.size)
        self._pending: list[tuple[float, Trajectory]] = []
        self._active: _Active | None = None
        self._stopping = False
        self._hold = np.zeros(limits.size)
        self.reset(initial_positions)

    # -- state ---------------------------------------------------------------------------------
    @property
    def limits(self) -> JointLimits:
        """Limits and caps the stream obeys."""
        return self._limits

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Joint order of every vector this class takes or returns."""
        return self._limits.names

    @property
    def position(self) -> np.ndarray:
        """Last commanded positions (copy)."""
        return self._q.copy()

    @property
    def velocity(self) -> np.ndarray:
        """Velocity of the last command step, (q_k - q_{k-1}) / dt (copy)."""
        return self._v.copy()

    @property
    def is_moving(self) -> bool:
        """True while the last step moved any joint."""
        return bool((self._v != 0.0).any())

    @property
    def time_scale(self) -> float:
        """Rate of the running trajectory's clock (1: on time; < 1: slowed to respect a cap)."""
        act = self._active
        return 1.0 if act is None else act.rate

    def busy(self, now: float) -> bool:
        """True while a trajectory waits to start or has points ahead, or the command still moves."""
        if self._pending or self._stopping or self.is_moving:
            return True
        act = self._active
        return act is not None and (now < act.start + act.offset or act.tau < act.traj.duration)

    def goal_end_time(self) -> float | None:
        """Absolute time of the last point of the last queued trajectory (None when only holding).

        This is the demanded end; a trajectory slowed down by the caps ends later (see ``busy``).
        """
        if self._pending:
            start, traj = self._pending[-1]
            return start + traj.duration
        if self._active is not None:
            return self._active.start + self._active.traj.duration
        return None

    # -- commands ------------------------------------------------------------------------------
    def reset(self, positions: np.ndarray) -> None:
        """Forget all trajectories and restart at rest at ``positions`` (e.g. after re-enabling).

        Raises ``ValueError`` for a wrong length or non-finite values: there is no fallback pose.
        """
        q = np.asarray(positions, dtype=float).reshape(-1)
        if q.shape != (self._limits.size,):
            raise ValueError(f"expected {self._limits.size} positions, got {q.shape}")
        if not np.all(np.isfinite(q)):
            raise ValueError("initial positions must be finite")
        self._q = q.copy()
        self._v = np.zeros_like(q)
        self._pending.clear()
        self._active = None
        self._stopping = False
        self._hold = q.copy()

    def hold(self) -> None:
        """Stop: drop all trajectories, brake at the acceleration cap, then hold where it came to rest."""
        self._pending.clear()
        self._active = None
        self._stopping = True

    def set_trajectory(self, traj: Trajectory, start_time: float | None, now: float) -> None:
        """Queue ``traj`` to replace whatever runs from ``start_time`` on (JTC semantics).

        ``start_time`` is absolute (same clock as ``now``); None means "now". Trajectories queued
        for ``start_time`` or later are dropped; the running one continues until ``start_time``.
        An empty trajectory stops at once (:meth:`hold`). The trajectory must have been validated
        against this streamer's limits.
        """
        names = self._limits.names
        if traj.indices.size and (
            int(traj.indices.max()) >= len(names)
            or any(names[i] != n for i, n in zip(traj.indices, traj.joint_names))
        ):
            raise ValueError(f"trajectory joints {traj.joint_names} do not match streamer joints {names}")
        if traj.empty:
            self.hold()
            return
        start = float(now if start_time is None else start_time)
        if not np.isfinite(start):
            raise ValueError(f"start_time must be finite, got {start_time}")
        self._pending = [p for p in self._pending if p[0] < start]
        self._pending.append((start, traj))

    def step(self, now: float, dt: float) -> np.ndarray:
        """Advance one cycle of length ``dt`` ending at ``now``; return the joint command to send.

        Picks up queued trajectories whose start time has come, samples the target, and moves the
        command towards it within the caps. ``dt <= 0`` returns the last command unchanged.
        """
        if not (math.isfinite(now) and math.isfinite(dt)):
            raise ValueError(f"now and dt must be finite (now={now}, dt={dt})")
        if dt <= 0:
            return self._q.copy()
        self._activate(now, dt)
        lower, upper, vmax, amax = self._lims
        q_old, v_old = self._q.tolist(), self._v.tolist()
        act = self._active
        if self._stopping:
            v_des = [0.0] * len(q_old)
        else:
            if act is None:
                t_prev = t_now = self._hold.tolist()
            else:
                t_prev = act.target
                t_now = self._advance(act, now, dt)
            v_des = []
            for i, qi in enumerate(q_old):
                # Clamp targets into the limits, then move with the target's own motion plus the
                # largest correction that still closes the remaining gap at rest.
                tp = min(max(t_prev[i], lower[i]), upper[i])
                tn = min(max(t_now[i], lower[i]), upper[i])
                gap = tp - qi
                v_des.append((tn - tp + math.copysign(closing_step(abs(gap), amax[i], dt), gap)) / dt)
        q_new, v_new = [], []
        for i, qi in enumerate(q_old):
            qn, vn = limit_step(qi, v_old[i], v_des[i], lower[i], upper[i], vmax[i], amax[i], dt)
            q_new.append(qn)
            v_new.append(vn)
        self._q = np.array(q_new)
        self._v = np.array(v_new)
        if self._stopping and not any(v_new):
            self._stopping = False
            self._hold = self._q.copy()
        return self._q.copy()

    # -- internals -----------------------------------------------------------------------------
    def _activate(self, now: float, dt: float) -> None:
        due = [p for p in self._pending if p[0] <= now]
        if not due:
            return
        start, traj = due[-1]
        self._pending = [p for p in self._pending if p[0] > now]
        self._stopping = False
        # The new trajectory takes over at its start time (or at the previous cycle if that was
        # later) from the commanded state, carried forward to that instant at the current velocity.
        t_prev = now - dt
        t_take = max(start, t_prev)
        anchor = self._q + self._v * (t_take - t_prev)
        # Its clock starts at the rate the previous one ran at when the arm is moving (no sudden
        # slow-down of a stream of replacements), from 0 when it is at rest (ramped up within the caps).
        prev = self._active
        rate = (prev.rate if prev is not None else 1.0) if self.is_moving else 0.0
        offset = t_take - start
        act = _Active(traj, start, anchor, self._v.copy(), offset, offset, rate, t_take, [], math.inf)
        act.target = self._sample(act, offset)
        dur = traj.duration
        if dur > 0.0:
            act.end_alpha = self._alpha(self._slope(act, dur, dt))
        self._active = act

    def _sample(self, act: _Active, tau: float) -> list[float]:
        """Full target vector at trajectory time ``tau`` (JTC semantics, joints not in it held)."""
        target = act.anchor_q.copy()
        idx = act.traj.indices
        target[idx] = act.traj.sample(tau, act.anchor_q[idx], act.anchor_v[idx], act.offset)
        return target.tolist()

    def _slope(self, act: _Active, tau: float, h: float) -> list[float]:
        """d target / d tau over the window of length ``h`` ending at ``tau`` (kept inside the trajectory)."""
        end = min(tau, act.traj.duration)
        a = self._sample(act, end - h)
        b = self._sample(act, end)
        return [(bi - ai) / h for ai, bi in zip(a, b)]

    def _alpha(self, slope: list[float]) -> float:
        """Largest d rate / dt (1/s) that keeps every joint within its acceleration cap on ``slope``."""
        amax = self._lims[3]
        return min((amax[i] / abs(s) for i, s in enumerate(slope) if abs(s) > 1e-12), default=math.inf)

    def _advance(self, act: _Active, now: float, dt: float) -> list[float]:
        """Move the trajectory clock on by at most ``dt`` at the largest rate the caps allow.

        The rate is the same for every joint (time scaling): at most 1, at most the velocity caps
        over the path's slope here, ramped by at most ``alpha * dt`` per cycle, and low enough to come
        to rest at the last point (braking on the path with :func:`braking_speed`, which stays valid
        when the next cycles are longer or shorter). Advancing by the capped ``dt`` (not the real
        elapsed time) also makes a late cycle slow the trajectory down instead of skipping part of it.
        """
        elapsed = now - act.t_last
        adv = dt if elapsed > dt else (elapsed if elapsed > 0.0 else 0.0)
        act.t_last = now
        if adv <= 0.0:
            return act.target
        dur = act.traj.duration
        if act.tau >= dur:
            act.rate = 0.0
            act.tau += adv  # past the last point: the target holds it
            return act.target
        ahead_tau = act.tau + dt
        if ahead_tau <= dur:  # the common case: one sample, reused below when running on time
            ahead = self._sample(act, ahead_tau)
            slope = [(b - a) / dt for a, b in zip(act.target, ahead)]
        else:
            ahead = None
            slope = self._slope(act, ahead_tau, dt)
        vmax = self._lims[2]
        rate = min(1.0, min((vmax[i] / abs(s) for i, s in enumerate(slope) if abs(s) > 1e-12), default=1.0))
        alpha = self._alpha(slope)
        if math.isfinite(alpha):
            rate = min(rate, act.rate + alpha * dt)
        brake = min(alpha, act.end_alpha)
        remaining = dur - act.tau
        if math.isfinite(brake):
            if remaining <= 0.5 * brake * dt * dt:
                # close enough to land on the last point this cycle: the speed that takes is within
                # half a cycle's braking of rest, so even a next cycle half as long stops it there
                rate = min(rate, remaining / dt)
            else:
                # the continuous braking bound holds whatever the lengths of the next cycles (jitter)
                rate = min(rate, braking_speed(remaining, brake, dt))
        rate = max(rate, 0.0)
        act.rate = rate
        tau = act.tau + rate * adv
        act.tau = dur if tau > dur - 1e-12 and remaining <= rate * adv + 1e-12 else tau
        act.target = ahead if ahead is not None and act.tau == ahead_tau else self._sample(act, act.tau)
        return act.target

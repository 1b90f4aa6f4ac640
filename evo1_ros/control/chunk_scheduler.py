"""Turn asynchronously arriving action chunks into one timed plan (LeRobot async semantics, no ROS).

The policy predicts a chunk of ``H`` actions from an observation taken at ``obs_time``; step ``k``
of it is meant for ``obs_time + k / control_rate``. Inference takes a while, so by the time a chunk
arrives some of its steps are already in the past. This class keeps the running plan (absolute due
times + actions) and, for every chunk that arrives:

* drops the steps whose time has passed (latency compensation) and everything after
  ``n_action_steps``;
* blends the overlap with the running plan: ``none`` (switch), ``weighted`` (per step
  ``old_weight * old + (1 - old_weight) * new``, LeRobot's ``weighted_average`` aggregate with 0.3),
  ``crossfade`` (new weight rising linearly over the overlap);
* if the running plan had already run out (the arm holds its last action), ramps from that held action
  into the new chunk over ``resume_steps`` steps, so resuming never jumps;
* refuses chunks that carry no news (observation not newer than the last accepted chunk's, or taken
  before the last :meth:`ChunkScheduler.reset`), non-finite chunks, and chunks with no step left.

It also says when to ask for the next chunk (remaining steps below ``chunk_threshold *
n_action_steps``, one request in flight at a time). The caller owns the clock: every method takes
``now`` in seconds on the same clock as ``obs_time``. Thread-safe (the node's inference worker adds
chunks while its timer reads the plan).

Step timing: step ``i`` of the plan, due at ``t_i``, is the current action for
``now`` in ``[t_i - tol, t_i + period - tol)`` with ``tol = tick_tolerance * period``, so a control tick
a little early still executes the step due at it. Steps with ``t_i > now + tol`` are "remaining".
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from evo1_ros.parameters import param, validate_fields

# ChunkArrival.reason values.
FIRST = "first"  # accepted; there was no plan (start, or after reset without a hold position)
REPLACED = "replaced"  # accepted; replaced the running plan from the current step on (overlap blended)
RESUMED = "resumed"  # accepted; the plan had run out, ramped from the held action
STALE = "stale"  # dropped; observation not newer than the last accepted chunk's
BEFORE_RESET = "before_reset"  # dropped; observation taken before the last reset (stop/hold/fault)
ELAPSED = "elapsed"  # dropped; no used step is due after this tick (inference slower than the chunk)
NOT_FINITE = "not_finite"  # dropped; NaN or inf in the chunk

ACCEPT_REASONS = (FIRST, REPLACED, RESUMED)
DROP_REASONS = (STALE, BEFORE_RESET, ELAPSED, NOT_FINITE)


class BlendMode(str, Enum):
    """How the overlap of a new chunk with the running plan is combined."""

    NONE = "none"
    WEIGHTED = "weighted"
    CROSSFADE = "crossfade"


def parse_blend(text: str | BlendMode) -> BlendMode:
    """``"none" | "weighted" | "crossfade"`` -> BlendMode; ValueError naming the allowed values."""
    if isinstance(text, BlendMode):
        return text
    try:
        return BlendMode(str(text).strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in BlendMode)
        raise ValueError(f"blend must be one of {allowed}; got {text!r}") from None


@dataclass(frozen=True)
class SchedulerConfig:
    """Timing and blending parameters (``blend`` also accepts its string value).

    ``chunk_threshold`` and ``blend`` are the policy node's parameters. ``control_rate`` and
    ``n_action_steps`` are the resolved values: the node's parameters of those names mean "0 = the
    checkpoint's" (training fps, horizon), so the node sets them here once the model is loaded.
    """

    # Hz; step k of a chunk observed at t_obs is due at t_obs + k / control_rate (default: the dataset fps
    # of config/dataset_features.yaml; the node always sets it)
    control_rate: float = 30.0
    chunk_threshold: float = param(
        0.5,
        "request the next chunk when remaining steps fall below this * n_action_steps "
        "(0 = only when the plan ran out, 1 = all the time)",
        min=0.0,
        max=1.0,
    )
    n_action_steps: int = 50  # at most this many steps of one chunk are used
    blend: BlendMode = param(
        BlendMode.WEIGHTED,
        "overlap blending: none | weighted (0.3 old + 0.7 new, LeRobot) | crossfade",
        choices=[m.value for m in BlendMode],
        to_value=parse_blend,
        to_param=lambda mode: parse_blend(mode).value,
    )
    old_weight: float = 0.3  # weighted: weight of the running plan on overlapping steps (LeRobot: 0.3)
    crossfade_steps: int | None = None  # crossfade: fade over at most this many steps (None = whole overlap)
    resume_steps: int = (
        10  # after the plan ran out: ramp from the held action over this many steps (0 = jump)
    )
    tick_tolerance: float = 0.25  # fraction of a period a tick may come early and still execute its step

    def __post_init__(self) -> None:
        object.__setattr__(self, "blend", parse_blend(self.blend))
        validate_fields(self)
        rate = float(self.control_rate)
        if not np.isfinite(rate) or rate <= 0:
            raise ValueError(f"control_rate must be a positive number of Hz, got {self.control_rate!r}")
        object.__setattr__(self, "control_rate", rate)
        if isinstance(self.n_action_steps, bool) or int(self.n_action_steps) != self.n_action_steps:
            raise ValueError(f"n_action_steps must be an integer, got {self.n_action_steps!r}")
        if self.n_action_steps < 1:
            raise ValueError(f"n_action_steps must be >= 1, got {self.n_action_steps}")
        object.__setattr__(self, "n_action_steps", int(self.n_action_steps))
        if not 0.0 <= self.old_weight <= 1.0:
            raise ValueError(f"old_weight must be within [0, 1] (LeRobot uses 0.3), got {self.old_weight!r}")
        if self.crossfade_steps is not None and (
            isinstance(self.crossfade_steps, bool) or int(self.crossfade_steps) < 1
        ):
            raise ValueError(
                f"crossfade_steps must be None (whole overlap) or >= 1, got {self.crossfade_steps!r}"
            )
        if (
            isinstance(self.resume_steps, bool)
            or int(self.resume_steps) != self.resume_steps
            or self.resume_steps < 0
        ):
            raise ValueError(f"resume_steps must be an integer >= 0 (0 = no ramp), got {self.resume_steps!r}")
        if not 0.0 <= self.tick_tolerance <= 0.5:
            raise ValueError(f"tick_tolerance must be within [0, 0.5] periods, got {self.tick_tolerance!r}")

    @property
    def period(self) -> float:
        """Seconds between two steps of a chunk."""
        return 1.0 / self.control_rate


@dataclass(frozen=True)
class ChunkArrival:
    """What :meth:`ChunkScheduler.add_chunk` did with one chunk (for status and counters)."""

    accepted: bool
    reason: str  # one of ACCEPT_REASONS or DROP_REASONS
    dropped_elapsed: int  # steps dropped because their time had passed (latency compensation)
    used_steps: int  # steps of this chunk now in the plan (0 when dropped)
    blended_steps: int  # of those, steps combined with the running plan or ramped from the held action
    detail: str = ""  # the reason in words
    latency: float = 0.0  # now - obs_time at arrival (s)


@dataclass
class _Plan:
    times: np.ndarray  # (N,) absolute due times, strictly increasing, one period apart
    actions: np.ndarray  # (N, D)


@dataclass
class SchedulerCounters:
    """Running totals since construction (reset() keeps them)."""

    chunks_accepted: int = 0
    chunks_dropped: int = 0
    requests_made: int = 0
    requests_failed: int = 0
    steps_dropped_elapsed: int = 0
    steps_blended: int = 0
    reasons: Counter = field(default_factory=Counter)


class ChunkScheduler:
    """The running plan of a chunked policy; see the module docstring for the semantics."""

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._plan: _Plan | None = None
        self._hold: np.ndarray | None = None  # where the arm holds after a reset(hold=...)
        self._last_obs_time: float | None = None
        self._reset_time: float | None = None
        self._outstanding = 0
        self._request_time: float | None = None
        self._counters = SchedulerCounters()
        self._last_arrival: ChunkArrival | None = None
        self._dim: int | None = None

    # -- control ------------------------------------------------------------------------------------
    def reset(self, now: float | None = None, hold: np.ndarray | None = None) -> None:
        """Forget the plan (stop / hold / fault); nothing is planned until the next accepted chunk.

        ``now``: chunks observed before it are refused later (``before_reset``), so a chunk computed
        before a stop never restarts motion. ``hold``: where the arm now rests; the next chunk then
        ramps from it (``resume_steps``) instead of starting wherever it starts. A request in flight
        stays counted until its chunk arrives or :meth:`request_failed` is called, so no second
        inference is started beside it.
        """
        with self._lock:
            self._plan = None
            self._hold = None
            if hold is not None:
                h = np.asarray(hold, dtype=float).reshape(-1)
                if not np.all(np.isfinite(h)):
                    raise ValueError("reset(hold=...) needs finite positions")
                self._hold = h.copy()
            if now is not None:
                self._reset_time = float(now)

    def should_request(self, now: float) -> bool:
        """True when a new chunk should be computed now: plan short or empty, nothing in flight."""
        with self._lock:
            if self._outstanding:
                return False
            remaining = self._remaining(now)
            return remaining == 0 or remaining < self.config.chunk_threshold * self.config.n_action_steps

    def mark_requested(self, now: float) -> None:
        """A request for a new chunk is in flight (from an observation taken about ``now``)."""
        with self._lock:
            self._outstanding += 1
            self._request_time = float(now)
            self._counters.requests_made += 1

    def request_failed(self) -> None:
        """The in-flight request produced nothing (inference raised, observation unusable)."""
        with self._lock:
            if self._outstanding:
                self._outstanding -= 1
            self._counters.requests_failed += 1
            if not self._outstanding:
                self._request_time = None

    def add_chunk(self, actions: np.ndarray, obs_time: float, now: float) -> ChunkArrival:
        """Merge a chunk (H, D) predicted from an observation taken at ``obs_time``; see module doc.

        Any arrival answers the request in flight. Raises ValueError for a malformed call (not 2-D,
        joint count differing from the running plan, non-finite times): those are bugs, not data.
        """
        a = np.asarray(actions, dtype=float)
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
            raise ValueError(f"actions must be a non-empty (H, D) array, got shape {a.shape}")
        if not (np.isfinite(obs_time) and np.isfinite(now)):
            raise ValueError(f"obs_time and now must be finite, got {obs_time!r}, {now!r}")
        cfg = self.config
        period = cfg.period
        tol = cfg.tick_tolerance * period
        with self._lock:
            if self._dim is not None and a.shape[1] != self._dim:
                raise ValueError(f"chunk has {a.shape[1]} action dims, the plan has {self._dim}")
            if self._outstanding:
                self._outstanding -= 1
            if not self._outstanding:
                self._request_time = None
            latency = float(now - obs_time)
            a = a[: cfg.n_action_steps]
            if not np.all(np.isfinite(a)):
                return self._drop(NOT_FINITE, "chunk contains NaN or inf", 0, latency)
            if self._reset_time is not None and obs_time < self._reset_time:
                return self._drop(
                    BEFORE_RESET,
                    f"observation {self._reset_time - obs_time:.3f} s older than the last reset",
                    0,
                    latency,
                )
            if self._last_obs_time is not None and obs_time <= self._last_obs_time:
                return self._drop(
                    STALE,
                    f"observation not newer than the last accepted chunk's (by {self._last_obs_time - obs_time:.3f} s)",
                    0,
                    latency,
                )
            # An observation stamped in the future (clock skew between hosts) counts as taken now.
            t0 = min(float(obs_time), float(now))
            times = t0 + np.arange(a.shape[0]) * period
            due = int(np.searchsorted(times, now + tol, side="right"))  # steps due by now
            if due >= a.shape[0]:  # nothing left after this tick: no plan to send
                return self._drop(
                    ELAPSED,
                    f"all {a.shape[0]} steps already due ({latency:.3f} s after the observation)",
                    a.shape[0],
                    latency,
                )
            current = max(due - 1, 0)  # the step due now stays (it is what executes at this tick)
            times, new = times[current:], a[current:]
            plan = self._plan
            if plan is not None and self._remaining(now) > 0:
                blended, n_blend = self._blend(plan, times, new)
                reason = REPLACED
                detail = f"{n_blend} overlapping step(s) blended ({cfg.blend.value})"
            else:
                held = self._hold if plan is None else plan.actions[-1]
                if held is not None and held.shape != (a.shape[1],):
                    raise ValueError(f"held position has {held.shape[0]} dims, the chunk {a.shape[1]}")
                blended, n_blend = self._ramp(held, new)
                reason = FIRST if plan is None and held is None else RESUMED
                detail = (
                    "no running plan"
                    if reason == FIRST
                    else f"plan had run out; ramped from the held action over {n_blend} step(s)"
                )
            self._plan = _Plan(times.copy(), blended)
            self._hold = None
            self._dim = a.shape[1]
            self._last_obs_time = float(obs_time)
            self._counters.chunks_accepted += 1
            self._counters.steps_dropped_elapsed += current
            self._counters.steps_blended += n_blend
            self._counters.reasons[reason] += 1
            arrival = ChunkArrival(True, reason, current, len(times), n_blend, detail, latency)
            self._last_arrival = arrival
            return arrival

    # -- queries ------------------------------------------------------------------------------------
    def action_at(self, now: float) -> np.ndarray | None:
        """Action due at this tick; None = nothing planned (hold where you are)."""
        with self._lock:
            plan = self._plan
            if plan is None:
                return None
            tol = self.config.tick_tolerance * self.config.period
            i = int(np.searchsorted(plan.times, now + tol, side="right")) - 1
            if i < 0 or now + tol >= plan.times[-1] + self.config.period:
                return None
            return plan.actions[i].copy()

    def plan(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Remaining plan after this tick: absolute due times (N,) and actions (N, D); N may be 0."""
        with self._lock:
            plan = self._plan
            if plan is None:
                return np.zeros(0), np.zeros((0, self._dim or 0))
            i = self._first_remaining(plan, now)
            return plan.times[i:].copy(), plan.actions[i:].copy()

    def remaining_steps(self, now: float) -> int:
        """Steps of the plan not yet due at ``now``."""
        with self._lock:
            return self._remaining(now)

    @property
    def requests_outstanding(self) -> int:
        """Requests in flight (0 or 1 when used as intended)."""
        return self._outstanding

    def request_age(self, now: float) -> float | None:
        """Seconds since the request in flight was made (None when none is); for "inference too slow"."""
        with self._lock:
            return None if self._request_time is None else float(now) - self._request_time

    @property
    def chunks_accepted(self) -> int:
        return self._counters.chunks_accepted

    @property
    def chunks_dropped(self) -> int:
        return self._counters.chunks_dropped

    @property
    def counters(self) -> SchedulerCounters:
        """A copy of the running totals (accepted/dropped per reason, steps dropped and blended)."""
        with self._lock:
            c = self._counters
            return SchedulerCounters(
                c.chunks_accepted,
                c.chunks_dropped,
                c.requests_made,
                c.requests_failed,
                c.steps_dropped_elapsed,
                c.steps_blended,
                Counter(c.reasons),
            )

    @property
    def last_arrival(self) -> ChunkArrival | None:
        return self._last_arrival

    @property
    def has_plan(self) -> bool:
        """True from the first accepted chunk until reset (also while holding after the plan ran out)."""
        return self._plan is not None

    # -- internals ----------------------------------------------------------------------------------
    def _first_remaining(self, plan: _Plan, now: float) -> int:
        tol = self.config.tick_tolerance * self.config.period
        return int(np.searchsorted(plan.times, now + tol, side="right"))

    def _remaining(self, now: float) -> int:
        plan = self._plan
        if plan is None:
            return 0
        return len(plan.times) - self._first_remaining(plan, now)

    def _drop(self, reason: str, detail: str, elapsed: int, latency: float) -> ChunkArrival:
        self._counters.chunks_dropped += 1
        self._counters.reasons[reason] += 1
        arrival = ChunkArrival(False, reason, elapsed, 0, 0, detail, latency)
        self._last_arrival = arrival
        return arrival

    def _blend(self, plan: _Plan, times: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, int]:
        """New plan on the new chunk's grid; steps inside the running plan's span are combined."""
        cfg = self.config
        tol = cfg.tick_tolerance * cfg.period
        n_overlap = int(np.searchsorted(times, plan.times[-1] + tol, side="right"))
        out = new.copy()
        if cfg.blend == BlendMode.NONE or n_overlap == 0:
            return out, 0
        t = times[:n_overlap]
        # The old plan sampled on the new grid (grids differ by a fraction of a period in general).
        old = np.stack([np.interp(t, plan.times, plan.actions[:, j]) for j in range(new.shape[1])], axis=1)
        if cfg.blend == BlendMode.WEIGHTED:
            w_new = np.full(n_overlap, 1.0 - cfg.old_weight)
        else:
            span = n_overlap if cfg.crossfade_steps is None else min(n_overlap, cfg.crossfade_steps)
            w_new = np.minimum((np.arange(n_overlap) + 1.0) / (span + 1.0), 1.0)
        out[:n_overlap] = (1.0 - w_new)[:, None] * old + w_new[:, None] * new[:n_overlap]
        return out, int(np.count_nonzero(w_new < 1.0))

    def _ramp(self, held: np.ndarray | None, new: np.ndarray) -> tuple[np.ndarray, int]:
        """Linear ramp from a held action into the new chunk over ``resume_steps`` steps."""
        out = new.copy()
        steps = self.config.resume_steps
        if held is None or steps == 0:
            return out, 0
        n = min(steps, len(new))
        w_new = (np.arange(n) + 1.0) / (steps + 1.0)
        out[:n] = (1.0 - w_new)[:, None] * held + w_new[:, None] * new[:n]
        return out, n

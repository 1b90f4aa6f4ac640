"""Sample several input streams on one frame clock, with a maximum age per stream.

The recorder keeps only the newest message of each stream (camera, joint states, action). At every
frame tick it asks :class:`FrameSampler` for one value per stream; a stream that has never sent
anything, or whose newest message is older than its ``max_age``, makes the whole frame stale: the
frame is dropped (not guessed around) and the drop is counted for that stream, so the operator sees
which stream lagged. A sample stamped *after* ``now`` (negative age) is stale too: it means a clock
problem (a sender's clock ahead, or the ROS clock jumped back), and treating it as fresh would keep
it fresh forever. On an arrival clock (``arrival_clock=True``: stamps are the monotonic time a
message arrived) no clock can run back, so a sample "after now" only arrived while the tick was
being taken (another callback thread): it is the freshest there is, age 0. No ROS here: times are plain float seconds on whatever clock the caller uses (the
recorder uses the monotonic clock for arrival times, the ROS clock only for header stamps).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Latest:
    value: Any = None
    stamp: float | None = None
    count: int = 0


class LatestStream:
    """Newest value of one stream and when it was stamped (thread-safe; writers never block long)."""

    def __init__(self, name: str, max_age: float, *, arrival_clock: bool = False) -> None:
        if not max_age >= 0:
            raise ValueError(f"stream {name!r}: max_age must be >= 0 (0 = no limit), got {max_age!r}")
        self.name = name
        self.max_age = float(max_age)
        self.arrival_clock = bool(arrival_clock)
        self._lock = threading.Lock()
        self._latest = _Latest()

    def update(self, value: Any, stamp: float) -> None:
        """Store ``value`` as the newest sample, stamped ``stamp`` seconds."""
        with self._lock:
            self._latest = _Latest(value, float(stamp), self._latest.count + 1)

    def clear(self) -> None:
        with self._lock:
            self._latest = _Latest()

    @property
    def count(self) -> int:
        """Messages received since creation (or the last clear)."""
        with self._lock:
            return self._latest.count

    def get(self) -> tuple[Any, float | None]:
        """(value, stamp) of the newest sample; (None, None) before the first."""
        with self._lock:
            return self._latest.value, self._latest.stamp

    def age(self, now: float) -> float | None:
        """Seconds since the newest sample's stamp (None before the first; negative: from the future)."""
        _, stamp = self.get()
        if stamp is None:
            return None
        return max(0.0, now - stamp) if self.arrival_clock else now - stamp

    def is_fresh(self, now: float) -> bool:
        """True when a sample exists, is not from the future and not older than ``max_age`` (0 = no limit)."""
        age = self.age(now)
        return age is not None and age >= 0.0 and (self.max_age == 0 or age <= self.max_age)

    def from_future(self, now: float) -> bool:
        """True when the newest sample is stamped after ``now``: a clock problem, not a late stream."""
        age = self.age(now)
        return age is not None and age < 0.0


@dataclass
class FrameSample:
    """One tick's result: the values of all streams, or the names of the stale ones."""

    time: float
    values: dict[str, Any] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    future: list[str] = field(default_factory=list)  # stale because stamped after ``time`` (clock problem)

    @property
    def ok(self) -> bool:
        return not self.stale


class FrameSampler:
    """Take one value per stream at each frame tick; count, per stream, the frames it made stale."""

    def __init__(self, streams: Iterable[LatestStream]) -> None:
        self.streams: dict[str, LatestStream] = {}
        for s in streams:
            if s.name in self.streams:
                raise ValueError(f"stream {s.name!r} registered twice")
            self.streams[s.name] = s
        self._lock = threading.Lock()
        self.frames_sampled = 0
        self.frames_dropped = 0
        self.drops_by_stream: dict[str, int] = dict.fromkeys(self.streams, 0)

    def __getitem__(self, name: str) -> LatestStream:
        return self.streams[name]

    def reset_counts(self) -> None:
        """Start counting afresh (at the start of every episode)."""
        with self._lock:
            self.frames_sampled = 0
            self.frames_dropped = 0
            self.drops_by_stream = dict.fromkeys(self.streams, 0)

    def sample(self, now: float) -> FrameSample:
        """Values of every stream at ``now``; a frame with any stale stream is counted as dropped."""
        out = self.collect(now)
        self.record(out)
        return out

    def collect(self, now: float) -> FrameSample:
        """Like :meth:`sample` but without counting, for callers that check values further first."""
        out = FrameSample(now)
        for name, stream in self.streams.items():
            value, _ = stream.get()
            if stream.is_fresh(now) and value is not None:
                out.values[name] = value
            else:
                out.stale.append(name)
                if stream.from_future(now):
                    out.future.append(name)
        return out

    def record(self, sample: FrameSample) -> None:
        """Count ``sample`` (also used for frames the caller found unusable for its own reasons)."""
        with self._lock:
            self.frames_sampled += 1
            if sample.stale:
                self.frames_dropped += 1
                for name in sample.stale:
                    self.drops_by_stream[name] = self.drops_by_stream.get(name, 0) + 1

    def ages(self, now: float) -> dict[str, float | None]:
        """Age of every stream's newest sample (None if none yet), for status messages."""
        return {name: s.age(now) for name, s in self.streams.items()}

    def drop_summary(self) -> str:
        """e.g. ``"wrist: 5, joint_states: 1"`` (streams that caused drops), or ``""``."""
        with self._lock:
            parts = [f"{n}: {c}" for n, c in self.drops_by_stream.items() if c]
        return ", ".join(parts)

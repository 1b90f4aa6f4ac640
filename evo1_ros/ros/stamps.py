"""Header stamps and durations <-> seconds / nanoseconds: the one conversion, used everywhere.

Works on anything shaped like ``builtin_interfaces/Time`` or ``builtin_interfaces/Duration``
(``sec`` and ``nanosec`` fields: ROS messages, rosbags' deserialised messages). No rclpy here, so
``recording/`` and the CLI may use it; ``builtin_interfaces`` is imported only by the functions that
build a message.

Conventions (kept exactly as the nodes always did them):

* to seconds: ``sec + nanosec * 1e-9`` (not ``(sec * 1e9 + nanosec) * 1e-9``; the two can differ in the
  last bit of the float);
* from seconds: rounded to the nearest nanosecond (``round(t * 1e9)``, ties to even), then split with
  floor division, so ``nanosec`` is always in ``[0, 1e9)`` and negative times have ``sec < 0``
  (``-0.25 s`` -> ``sec=-1, nanosec=750_000_000``), as ``rclpy.time.Time.to_msg`` does.
"""

from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000


def stamp_to_seconds(stamp: Any) -> float:
    """``Time`` / ``Duration``-like -> float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_to_nanoseconds(stamp: Any) -> int:
    """``Time`` / ``Duration``-like -> integer nanoseconds (exact)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def seconds_to_nanoseconds(t: float) -> int:
    """Float seconds -> integer nanoseconds, rounded to the nearest."""
    return int(round(float(t) * 1e9))


def split_nanoseconds(ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> ``(sec, nanosec)`` with ``0 <= nanosec < 1e9``."""
    return divmod(int(ns), NS_PER_S)


def nanoseconds_to_stamp(ns: int) -> Any:
    """Integer nanoseconds -> ``builtin_interfaces/Time``."""
    from builtin_interfaces.msg import Time

    sec, nanosec = split_nanoseconds(ns)
    return Time(sec=sec, nanosec=nanosec)


def seconds_to_stamp(t: float) -> Any:
    """Float seconds -> ``builtin_interfaces/Time`` (nearest nanosecond)."""
    return nanoseconds_to_stamp(seconds_to_nanoseconds(t))


def seconds_to_duration(t: float) -> Any:
    """Float seconds -> ``builtin_interfaces/Duration`` (nearest nanosecond), e.g. a ``time_from_start``."""
    from builtin_interfaces.msg import Duration

    sec, nanosec = split_nanoseconds(seconds_to_nanoseconds(t))
    return Duration(sec=sec, nanosec=nanosec)

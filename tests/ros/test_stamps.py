"""evo1_ros/ros/stamps.py: the one stamp <-> seconds conversion (round trips, nanosecond rounding, rclpy parity)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from builtin_interfaces.msg import Duration, Time
from rclpy.duration import Duration as RosDuration
from rclpy.time import Time as RosTime

from evo1_ros.ros.stamps import (
    NS_PER_S,
    nanoseconds_to_stamp,
    seconds_to_duration,
    seconds_to_nanoseconds,
    seconds_to_stamp,
    split_nanoseconds,
    stamp_to_nanoseconds,
    stamp_to_seconds,
)

SECONDS = [0.0, 1e-9, 0.1, 0.5, 0.999999999, 1.0, 1.25, 2.000000001, 1234.567890123, 1_700_000_000.123456]


def test_module_has_no_rclpy():
    """recording/ and the CLI use it: it must stay free of rclpy (docs/architecture.md §2)."""
    import evo1_ros.ros.stamps as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "rclpy" not in roots


@pytest.mark.parametrize("t", SECONDS)
def test_round_trip_seconds(t):
    stamp = seconds_to_stamp(t)
    assert isinstance(stamp, Time)
    assert 0 <= stamp.nanosec < NS_PER_S
    assert stamp_to_nanoseconds(stamp) == seconds_to_nanoseconds(t)
    assert stamp_to_seconds(stamp) == pytest.approx(t, abs=1e-9 + abs(t) * 1e-15)
    d = seconds_to_duration(t)
    assert isinstance(d, Duration)
    assert (d.sec, d.nanosec) == (stamp.sec, stamp.nanosec)


@pytest.mark.parametrize("ns", [0, 1, NS_PER_S - 1, NS_PER_S, NS_PER_S + 1, 1_700_000_000_123_456_789])
def test_round_trip_nanoseconds_is_exact(ns):
    assert stamp_to_nanoseconds(nanoseconds_to_stamp(ns)) == ns
    assert split_nanoseconds(ns) == (ns // NS_PER_S, ns % NS_PER_S)


def test_rounds_to_the_nearest_nanosecond():
    assert seconds_to_nanoseconds(0.4e-9) == 0
    assert seconds_to_nanoseconds(0.6e-9) == 1
    assert seconds_to_nanoseconds(0.9999999996) == NS_PER_S  # carries into sec, never nanosec == 1e9
    stamp = seconds_to_stamp(0.9999999996)
    assert (stamp.sec, stamp.nanosec) == (1, 0)
    assert seconds_to_nanoseconds(0.57) == 570_000_000  # 0.57 * 1e9 = 569999999.99..: rounded, not truncated


def test_negative_times_floor_into_sec():
    assert split_nanoseconds(-1) == (-1, NS_PER_S - 1)
    stamp = seconds_to_stamp(-0.25)
    assert (stamp.sec, stamp.nanosec) == (-1, 750_000_000)
    assert stamp_to_seconds(stamp) == -0.25
    d = seconds_to_duration(-1.5)
    assert (d.sec, d.nanosec) == (-2, 500_000_000)


def test_seconds_is_sec_plus_scaled_nanosec():
    """The nodes' convention, kept: sec + nanosec * 1e-9 (what recorded datasets were stamped with)."""
    for sec, nanosec in [(0, 0), (1, 1), (12, 345_678_901), (1_700_000_000, 999_999_999)]:
        assert stamp_to_seconds(Time(sec=sec, nanosec=nanosec)) == sec + nanosec * 1e-9
        assert stamp_to_seconds(Duration(sec=sec, nanosec=nanosec)) == sec + nanosec * 1e-9


@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 1_000_000_000, 12_345_678_901, 1_700_000_000_123_456_789])
def test_matches_rclpy(ns):
    ros_msg = RosTime(nanoseconds=ns).to_msg()
    ours = nanoseconds_to_stamp(ns)
    assert (ours.sec, ours.nanosec) == (ros_msg.sec, ros_msg.nanosec)
    assert stamp_to_nanoseconds(ros_msg) == RosTime.from_msg(ros_msg).nanoseconds == ns
    dur = RosDuration(nanoseconds=ns).to_msg()
    assert (dur.sec, dur.nanosec) == split_nanoseconds(ns)
    assert stamp_to_seconds(ros_msg) == pytest.approx(
        RosTime(nanoseconds=ns).nanoseconds * 1e-9, rel=1e-15, abs=1e-9
    )


def test_matches_rclpy_for_seconds():
    for t in [0.1, 0.5, 1.25, 3.000000001]:
        ours = seconds_to_stamp(t)
        ros_msg = RosTime(seconds=t).to_msg()
        # rclpy's Time(seconds=t) truncates to nanoseconds; ours rounds (as the nodes always did),
        # so the two differ by at most one nanosecond.
        assert abs(stamp_to_nanoseconds(ours) - stamp_to_nanoseconds(ros_msg)) <= 1

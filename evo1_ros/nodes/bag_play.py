"""`evo1 bag play`: publish a bag's raw CDR with its original timing (no deserialise/serialise round trip).

One publisher per topic, with the QoS the topic was recorded with; works for any installed type,
evo1_msgs included. ``rate`` scales time, ``start``/``duration`` (s from the bag start) select a
window, ``loop`` repeats, ``clock`` publishes ``/clock`` from the bag time (for use_sim_time
consumers). Timing: sleep to ~1 ms before each message's due time, then spin on the clock, so a
message leaves within about a millisecond of ``start_wall + (t - t0) / rate`` on an idle machine.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rosgraph_msgs.msg import Clock

from evo1_ros.nodes.bag_record import message_class, qos_profile
from evo1_ros.ros.stamps import split_nanoseconds
from recording.bag.bagio import BagError, bag_files, open_bag, qos_from_connection

_SPIN_S = 0.001  # the last millisecond before a due time is busy-waited


@dataclass
class PlayOptions:
    rate: float = 1.0
    start: float = 0.0  # s after the bag's first message
    duration: float = 0.0  # s, 0 = to the end
    topics: Sequence[str] | None = None
    loop: bool = False
    clock: bool = False
    clock_rate: float = 100.0
    wait_for_subscribers: float = 0.0  # s to wait for every publisher to be matched before starting


@dataclass
class PlayStats:
    """Per-message lateness (s, actual publish - due) and counts per topic."""

    lateness: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class BagPlayer:
    """Plays bag folders through ``node``'s publishers (created from the first bag's connections)."""

    def __init__(self, node: Node, bag: Path | str, options: PlayOptions) -> None:
        if not options.rate > 0:
            raise BagError(f"--rate must be > 0, got {options.rate}")
        self.node = node
        self.options = options
        self.files = bag_files(bag)
        self.stop = threading.Event()
        self.publishers: dict[str, Any] = {}
        with open_bag(self.files[0]) as first:
            for conn in first.select(options.topics):
                if conn.topic not in self.publishers:
                    cls = message_class(conn.msgtype)
                    self.publishers[conn.topic] = node.create_publisher(
                        cls, conn.topic, qos_profile(qos_from_connection(conn), 10)
                    )
        self.clock_pub = node.create_publisher(Clock, "/clock", 10) if options.clock else None

    def wait_for_subscribers(self) -> bool:
        end = time.monotonic() + self.options.wait_for_subscribers
        while time.monotonic() < end and not self.stop.is_set():
            if all(p.get_subscription_count() > 0 for p in self.publishers.values()):
                return True
            time.sleep(0.02)
        return all(p.get_subscription_count() > 0 for p in self.publishers.values())

    def _publish_clock(self, t_ns: int) -> None:
        if self.clock_pub is not None:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = split_nanoseconds(t_ns)
            self.clock_pub.publish(msg)

    def _wait_until(self, due: float, bag_t0: int, wall_t0: float) -> None:
        clock_period = 1.0 / self.options.clock_rate if self.clock_pub is not None else None
        while not self.stop.is_set():
            left = due - time.perf_counter()
            if left <= 0:
                return
            if clock_period is not None:
                now_bag = bag_t0 + int((time.perf_counter() - wall_t0) * self.options.rate * 1e9)
                self._publish_clock(now_bag)
                time.sleep(min(clock_period, max(0.0, left - _SPIN_S)))
                continue
            if left > _SPIN_S:
                time.sleep(left - _SPIN_S)

    def play(self) -> PlayStats:
        """Publish everything once (or until stopped; forever with ``loop``)."""
        stats = PlayStats(counts=dict.fromkeys(self.publishers, 0))
        if self.options.wait_for_subscribers > 0:
            self.wait_for_subscribers()
        while not self.stop.is_set():
            self._play_once(stats)
            if not self.options.loop:
                break
        return stats

    def _play_once(self, stats: PlayStats) -> None:
        o = self.options
        wall_t0: float | None = None
        bag_t0: int | None = None
        for path in self.files:
            with open_bag(path) as bag:
                conns = [c for c in bag.connections if c.topic in self.publishers]
                first_ns = bag.reader.start_time if bag_t0 is None else bag_t0
                start = int(first_ns + o.start * 1e9) if bag_t0 is None else None
                stop = int(first_ns + (o.start + o.duration) * 1e9) if o.duration > 0 else None
                for conn, t_ns, raw in bag.messages(conns, start=start, stop=stop):
                    if self.stop.is_set():
                        return
                    if bag_t0 is None:
                        bag_t0, wall_t0 = t_ns, time.perf_counter()
                    due = wall_t0 + (t_ns - bag_t0) * 1e-9 / o.rate
                    self._wait_until(due, bag_t0, wall_t0)
                    self._publish_clock(t_ns)
                    self.publishers[conn.topic].publish(bytes(raw))
                    stats.lateness.append(time.perf_counter() - due)
                    stats.counts[conn.topic] += 1


def run_play(bag: Path | str, options: PlayOptions, ros_args: Sequence[str] = ()) -> int:
    """Play ``bag`` in a fresh rclpy context; Ctrl-C/SIGTERM stops cleanly; prints counts and timing."""
    import numpy as np
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=["evo1_bag", "--ros-args", *ros_args], signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = Node("bag_player")
        player = BagPlayer(node, bag, options)
        old = {s: signal.signal(s, lambda *_: player.stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            stats = player.play()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    for topic, n in sorted(stats.counts.items()):
        print(f"{topic}  {n} msgs", flush=True)
    if stats.lateness:
        late = np.asarray(stats.lateness) * 1e3
        print(
            f"{len(late)} messages published; lateness p50 {np.percentile(late, 50):.2f} ms, "
            f"p99 {np.percentile(late, 99):.2f} ms, max {late.max():.2f} ms",
            flush=True,
        )
    return 0

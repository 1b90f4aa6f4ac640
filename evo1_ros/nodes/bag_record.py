"""`evo1 bag record`: live topics -> a standard rosbag2 bag (MCAP or sqlite3), raw CDR, no ros2 CLI.

Topics are subscribed as raw CDR (no deserialisation) with the QoS their publishers offer (best effort
if any publisher is, transient local only if all are, as rosbag2 does), and that QoS is stored in the
bag so `evo1 bag play` offers it again. Topics that are not published yet are picked up when they
appear. Log time = this node's clock at arrival (ROS time; sim time with use_sim_time). The bag is
split by size/duration, or per episode: a new bag file at each ``~/split`` service call or each time
the recorder's status enters RECORDING. Ctrl-C (or SIGTERM) closes a valid bag and prints the message
counts per topic.
"""

from __future__ import annotations

import importlib
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from recording.bag.bagio import BagError, BagWriter, QosSpec

RECORDING_STATE = 1  # evo1_msgs/RecorderStatus.RECORDING


def message_class(msgtype: str) -> Any:
    """``pkg/msg/Name`` -> the generated Python class (raises BagError if the package is missing)."""
    pkg, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError):
        raise BagError(
            f"message type {msgtype} is not installed in this environment (package {pkg})"
        ) from None


def qos_profile(spec: QosSpec, min_depth: int) -> QoSProfile:
    """The rclpy profile for a bag's QoS: keep-last, depth at least ``min_depth``, its reliability and durability."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=max(spec.depth, min_depth),
        reliability=ReliabilityPolicy.BEST_EFFORT
        if spec.reliability == "best_effort"
        else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL
        if spec.durability == "transient_local"
        else DurabilityPolicy.VOLATILE,
    )


def offered_qos(node: Node, topic: str) -> QosSpec | None:
    """The QoS to subscribe ``topic`` with, from its publishers (None while it has none)."""
    infos = node.get_publishers_info_by_topic(topic)
    if not infos:
        return None
    best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
    latched = all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    depth = max(int(i.qos_profile.depth or 0) for i in infos) or 10
    return QosSpec(
        "best_effort" if best_effort else "reliable", "transient_local" if latched else "volatile", depth
    )


class BagRecordNode(Node):
    """Records ``topics`` (None = every topic seen) into ``writer`` (see the module docstring)."""

    def __init__(
        self,
        writer: BagWriter,
        topics: Sequence[str] | None,
        *,
        episode_split: bool = False,
        status_topic: str = "/recorder/status",
        depth: int = 100,
        discovery_period: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__("bag_recorder", **kwargs)
        self.writer = writer
        self.wanted = None if topics is None else [self.resolve_topic_name(t) for t in topics]
        self.depth = int(depth)
        self.subscribed: dict[str, str] = {}
        self._lock = threading.Lock()
        self._last_state: int | None = None
        self._status_topic = self.resolve_topic_name(status_topic)
        self.episode_split = episode_split
        self.create_service(Trigger, "~/split", self._srv_split)
        self.create_timer(discovery_period, self.discover)
        self.discover()

    def discover(self) -> None:
        """Subscribe to wanted topics that now have a publisher (types from the graph)."""
        own = {self.resolve_topic_name("~/split")}
        for topic, types in self.get_topic_names_and_types():
            if (
                topic in self.subscribed
                or topic in own
                or (self.wanted is not None and topic not in self.wanted)
            ):
                continue
            if self.wanted is None and topic in ("/rosout", "/parameter_events"):
                continue
            if len(types) != 1:
                self.get_logger().warning(f"{topic}: published with several types {types}; not recorded")
                self.subscribed[topic] = ""
                continue
            qos = offered_qos(self, topic)
            if qos is None:
                continue
            try:
                cls = message_class(types[0])
                with self._lock:
                    self.writer.add_topic(topic, types[0], qos)
            except BagError as e:
                self.get_logger().error(f"{topic}: {e}")
                self.subscribed[topic] = ""
                continue
            profile = qos_profile(qos, self.depth)
            self.create_subscription(cls, topic, lambda raw, t=topic: self._on_raw(t, raw), profile, raw=True)
            self.subscribed[topic] = types[0]
            self.get_logger().info(f"recording {topic} ({types[0]}, {qos.reliability}, {qos.durability})")

    def _on_raw(self, topic: str, raw: bytes) -> None:
        now = self.get_clock().now().nanoseconds
        with self._lock:
            if self.episode_split and topic == self._status_topic:
                self._episode_event(raw)
            self.writer.write(topic, now, raw)

    def _episode_event(self, raw: bytes) -> None:
        from rclpy.serialization import deserialize_message

        from evo1_msgs.msg import RecorderStatus

        state = deserialize_message(raw, RecorderStatus).state
        if state == RECORDING_STATE and self._last_state not in (None, RECORDING_STATE):
            path = self.writer.new_file()
            self.get_logger().info(f"episode started: new bag file {path}")
        self._last_state = state

    def _srv_split(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        with self._lock:
            path = self.writer.new_file()
        res.success, res.message = True, f"now writing {path}"
        return res

    def close(self) -> None:
        with self._lock:
            self.writer.close()

    @property
    def wanted_missing(self) -> list[str]:
        return [] if self.wanted is None else [t for t in self.wanted if t not in self.subscribed]


def run_record(
    writer: BagWriter,
    topics: Sequence[str] | None,
    *,
    duration: float = 0.0,
    episode_split: bool = False,
    depth: int = 100,
    discovery_period: float = 0.5,
    ros_args: Sequence[str] = (),
) -> int:
    """Record until Ctrl-C/SIGTERM (or ``duration`` s); always close the bag and print the counts."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from recording.bag.bagio import dump_counts

    stop = threading.Event()
    rclpy.init(args=["evo1_bag", "--ros-args", *ros_args], signal_handler_options=SignalHandlerOptions.NO)
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    node = None
    try:
        node = BagRecordNode(
            writer, topics, episode_split=episode_split, depth=depth, discovery_period=discovery_period
        )
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        end = time.monotonic() + duration if duration > 0 else float("inf")
        while not stop.is_set() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        drain_until = time.monotonic() + 0.5  # take what already arrived before closing the bag
        while time.monotonic() < drain_until:
            executor.spin_once(timeout_sec=0.05)
        missing = node.wanted_missing
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        for s, h in old.items():
            signal.signal(s, h)
        rclpy.try_shutdown()
    print(dump_counts(writer.counts, writer.paths), flush=True)
    if missing:
        print(f"never published (not in the bag): {', '.join(missing)}", flush=True)
    return 0

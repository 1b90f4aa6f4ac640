"""Approximate-time synchronisation of several topics (``message_filters`` semantics, no dependency).

``message_filters`` is not on PyPI (docs/ros2_from_pypi.md §3), so this module carries its own
implementation of the policy of the Python ``message_filters.ApproximateTimeSynchronizer`` of ROS 2
(rolling/kilted), and :func:`make_approximate_synchronizer` uses the real package when it is
importable. Whichever backend runs, the same messages are matched.

The policy (:class:`ApproximateTimePolicy`) is pure: it takes ``(input_index, stamp_ns, msg)`` and
returns the matched tuple, so it can be driven directly with messages (tests, rosbag replay).
:class:`ApproximateTimeSynchronizer` and :class:`Subscriber` mirror the ``message_filters`` API
(``registerCallback(cb, *args)``, ``connectInput``, ``signalMessage``) and do the ROS wiring.

The matching rules, for a message with stamp ``t`` arriving on input ``i``:

1. store it in input ``i``'s ``{stamp: msg}`` dict (same stamp replaces); while the dict has more than
   ``queue_size`` entries, drop its smallest stamp (which may be the new message itself);
2. for every other input ``j`` in order, its candidates are the stored stamps ``s`` with
   ``|s - t| <= slop``, sorted by ``|s - t|`` (stable, so ties keep dict insertion order); no candidate
   on some input means no output;
3. walk the Cartesian product of the candidate lists (``itertools.product`` order) with ``t`` placed at
   position ``i``; the first combination whose ``max - min`` is strictly below ``slop`` and whose stamps
   are all still stored is emitted (messages in input order) and removed from the dicts. At most one
   set is emitted per incoming message.

``slop`` is given in seconds and compared in integer nanoseconds, converted exactly as
``rclpy.duration.Duration(seconds=slop)`` does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evo1_ros.ros.stamps import stamp_to_nanoseconds

__all__ = [
    "ApproximateTimePolicy",
    "ApproximateTimeSynchronizer",
    "HeaderlessMessageError",
    "SimpleFilter",
    "Subscriber",
    "SynchronizerHandle",
    "have_message_filters",
    "make_approximate_synchronizer",
    "message_stamp_ns",
    "slop_to_ns",
]

_NS_PER_S = 1_000_000_000


class HeaderlessMessageError(ValueError):
    """A message without ``header.stamp`` reached a synchroniser that does not allow headerless input."""


def slop_to_ns(slop: float) -> int:
    """Seconds -> integer nanoseconds, truncating exactly like ``Duration(seconds=slop)`` upstream."""
    slop_ns = int(slop * _NS_PER_S)
    if slop_ns < 0:
        raise ValueError(f"slop must be non-negative, got {slop!r}")
    return slop_ns


def message_stamp_ns(
    msg: Any, allow_headerless: bool = False, now_ns: Callable[[], int] | None = None
) -> int:
    """Stamp of ``msg`` in nanoseconds: ``header.stamp``, or the current clock for headerless messages.

    ``header.stamp`` may be a ``builtin_interfaces/Time`` or anything with ``nanoseconds`` (rclpy Time).
    Headerless messages raise :class:`HeaderlessMessageError` unless ``allow_headerless``, in which case
    ``now_ns()`` (default: the ROS clock, as upstream) stamps them.
    """
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None) if header is not None else None
    if stamp is None:
        if not allow_headerless:
            raise HeaderlessMessageError(
                f"{type(msg).__name__} has no header.stamp; approximate-time sync needs stamped messages "
                "(enable allow_headerless to stamp them with the current ROS time on arrival)"
            )
        return int(now_ns()) if now_ns is not None else _ros_clock_now_ns()
    if hasattr(stamp, "nanoseconds"):
        return int(stamp.nanoseconds)
    return stamp_to_nanoseconds(stamp)


def _ros_clock_now_ns() -> int:
    from rclpy.clock import ROSClock

    return int(ROSClock().now().nanoseconds)


class ApproximateTimePolicy:
    """The pure matching policy: feed ``(input_index, stamp_ns, msg)``, get matched tuples back.

    Thread-safe: every call holds one lock, because subscription callbacks may run on several
    executor threads at once.
    """

    def __init__(self, num_inputs: int, queue_size: int, slop: float) -> None:
        if num_inputs < 1:
            raise ValueError(f"need at least one input, got {num_inputs}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.num_inputs = int(num_inputs)
        self.queue_size = int(queue_size)
        self.slop = float(slop)
        self.slop_ns = slop_to_ns(slop)
        self._queues: list[dict[int, Any]] = [{} for _ in range(self.num_inputs)]
        self._lock = threading.Lock()

    def add(self, input_index: int, stamp_ns: int, msg: Any) -> tuple[Any, ...] | None:
        """Store ``msg`` and return the set it completes (messages in input order), or ``None``."""
        if not 0 <= input_index < self.num_inputs:
            raise IndexError(f"input index {input_index} out of range for {self.num_inputs} inputs")
        stamp = int(stamp_ns)
        with self._lock:
            own = self._queues[input_index]
            own[stamp] = msg
            while len(own) > self.queue_size:
                del own[min(own)]
            if stamp not in own:
                # The new message was the oldest of a full queue and was dropped: no combination
                # containing it can pass the "all stamps still stored" test.
                return None
            candidates = self._candidates_locked(input_index, stamp)
            if candidates is None:
                return None
            chosen = self._first_match(candidates, stamp)
            if chosen is None:
                return None
            chosen.insert(input_index, stamp)
            return tuple(queue.pop(s) for queue, s in zip(self._queues, chosen, strict=True))

    def candidates(self, input_index: int, stamp_ns: int) -> list[list[int]] | None:
        """Candidate stamps of every other input for a message at ``stamp_ns`` (diagnostics, tests).

        ``None`` when some other input has no stored stamp within ``slop``.
        """
        with self._lock:
            return self._candidates_locked(input_index, int(stamp_ns))

    def queued_stamps(self, input_index: int) -> list[int]:
        """Stamps stored for one input, in dict insertion order."""
        with self._lock:
            return list(self._queues[input_index])

    def clear(self) -> None:
        """Forget every stored message (e.g. after a time jump)."""
        with self._lock:
            for queue in self._queues:
                queue.clear()

    def _candidates_locked(self, input_index: int, stamp: int) -> list[list[int]] | None:
        result = []
        for j, queue in enumerate(self._queues):
            if j == input_index:
                continue
            near = [s for s in queue if abs(s - stamp) <= self.slop_ns]
            if not near:
                return None
            near.sort(key=lambda s: abs(s - stamp))  # stable: ties keep insertion order
            result.append(near)
        return result

    def _first_match(self, candidates: list[list[int]], stamp: int) -> list[int] | None:
        """First combination in ``itertools.product`` order whose spread is below ``slop``.

        Depth-first over the same order, skipping a prefix as soon as its spread reaches ``slop``:
        adding stamps never shrinks a spread, so no skipped combination could have been valid and
        the first one found is the one the plain product walk would find.
        """
        slop_ns = self.slop_ns
        depth = len(candidates)
        chosen: list[int] = []
        if depth == 0:  # a single input: the product has one empty combination
            return chosen if slop_ns > 0 else None
        positions = [0] * depth  # per level: index of the option being tried
        bounds: list[tuple[int, int]] = [(stamp, stamp)] * (depth + 1)  # (lo, hi) entering each level
        level = 0
        while level >= 0:
            options = candidates[level]
            lo, hi = bounds[level]
            pos = positions[level]
            while pos < len(options):
                s = options[pos]
                new_lo, new_hi = min(lo, s), max(hi, s)
                if new_hi - new_lo < slop_ns:
                    break
                pos += 1
            if pos == len(options):
                positions[level] = 0
                level -= 1
                if level >= 0:
                    chosen.pop()
                    positions[level] += 1
                continue
            positions[level] = pos
            chosen.append(options[pos])
            bounds[level + 1] = (new_lo, new_hi)
            if level + 1 == depth:
                return chosen
            level += 1
        return None


class SimpleFilter:
    """Callback registry with the ``message_filters.SimpleFilter`` interface."""

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable[..., Any], tuple[Any, ...]]] = {}
        self._next_id = 0
        self._cb_lock = threading.Lock()

    def registerCallback(self, cb: Callable[..., Any], *args: Any) -> int:
        """Call ``cb(*msgs, *args)`` on every output; returns an id for :meth:`unregisterCallback`."""
        with self._cb_lock:
            conn = self._next_id
            self._next_id += 1
            self.callbacks[conn] = (cb, args)
        return conn

    def unregisterCallback(self, conn: int) -> None:
        """Stop calling the callback registered as ``conn``."""
        with self._cb_lock:
            self.callbacks.pop(conn, None)

    def signalMessage(self, *msg: Any) -> None:
        """Deliver ``msg`` to every registered callback, in registration order."""
        with self._cb_lock:
            targets = list(self.callbacks.values())
        for cb, args in targets:
            cb(*(msg + args))


class Subscriber(SimpleFilter):
    """A ROS subscription as a filter source (the ``message_filters.Subscriber`` interface)."""

    def __init__(self, node: Any, msg_type: Any, topic: str, qos_profile: Any = 10, **kwargs: Any) -> None:
        super().__init__()
        self.node = node
        self.topic = topic
        self.sub = node.create_subscription(msg_type, topic, self.callback, qos_profile, **kwargs)

    def callback(self, msg: Any) -> None:
        """Subscription callback: forward the message to the registered filters."""
        self.signalMessage(msg)

    def getTopic(self) -> str:
        """Topic name as given."""
        return self.topic

    def getSubscriptionObject(self) -> Any:
        """The underlying ``rclpy`` subscription."""
        return self.sub

    def destroy(self) -> None:
        """Destroy the subscription on its node (idempotent)."""
        if self.sub is not None:
            self.node.destroy_subscription(self.sub)
            self.sub = None


class ApproximateTimeSynchronizer(SimpleFilter):
    """Drop-in for ``message_filters.ApproximateTimeSynchronizer(fs, queue_size, slop, allow_headerless)``.

    ``fs`` are filter sources with ``registerCallback`` (e.g. :class:`Subscriber`); messages can also be
    fed directly with :meth:`add`. Headerless messages are logged and dropped unless
    ``allow_headerless``. ``clock_ns`` (default: the ROS clock) stamps headerless messages; ``logger``
    (default: an rclpy logger) receives the rejection warnings. Callbacks run after the policy lock is
    released, so a callback may feed the synchroniser again without deadlocking.
    """

    def __init__(
        self,
        fs: Sequence[Any],
        queue_size: int,
        slop: float,
        allow_headerless: bool = False,
        *,
        clock_ns: Callable[[], int] | None = None,
        logger: Any = None,
    ) -> None:
        super().__init__()
        self.queue_size = int(queue_size)
        self.slop = float(slop)
        self.allow_headerless = bool(allow_headerless)
        self.policy = ApproximateTimePolicy(len(fs), queue_size, slop)
        self.rejected_headerless = 0
        self._clock_ns = clock_ns
        self._logger = logger
        self.input_connections: list[tuple[Any, int]] = []
        self.connectInput(fs)

    def connectInput(self, fs: Sequence[Any]) -> None:
        """Listen to the filter sources ``fs``; input ``k`` is ``fs[k]``."""
        if len(fs) != self.policy.num_inputs:
            raise ValueError(f"expected {self.policy.num_inputs} inputs, got {len(fs)}")
        for src, conn in self.input_connections:
            src.unregisterCallback(conn)
        self.policy.clear()
        self.input_connections = [(f, f.registerCallback(self.add, index)) for index, f in enumerate(fs)]

    def add(self, msg: Any, input_index: int) -> tuple[Any, ...] | None:
        """Feed one message of input ``input_index``; returns (and signals) the matched set, if any."""
        try:
            stamp = message_stamp_ns(msg, self.allow_headerless, self._clock_ns)
        except HeaderlessMessageError as exc:
            self.rejected_headerless += 1
            self._get_logger().warning(str(exc), throttle_duration_sec=5.0)
            return None
        matched = self.policy.add(input_index, stamp, msg)
        if matched is not None:
            self.signalMessage(*matched)
        return matched

    def _get_logger(self) -> Any:
        if self._logger is None:
            from rclpy.logging import get_logger

            self._logger = get_logger("evo1_ros.sync")
        return self._logger


def have_message_filters() -> bool:
    """Whether the ROS 2 ``message_filters`` package is importable here."""
    try:
        import message_filters  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class SynchronizerHandle:
    """What :func:`make_approximate_synchronizer` built; keep it alive while the sync should run."""

    synchronizer: Any
    subscribers: list[Any]
    backend: str  # "message_filters" or "evo1_ros"
    node: Any = field(repr=False, default=None)

    def destroy(self) -> None:
        """Destroy the subscriptions (the node itself stays)."""
        for sub in self.subscribers:
            handle = getattr(sub, "sub", None)
            if handle is not None and self.node is not None:
                self.node.destroy_subscription(handle)
                sub.sub = None
        self.subscribers = []


def make_approximate_synchronizer(
    node: Any,
    topics: Sequence[tuple[Any, str]],
    queue_size: int,
    slop: float,
    callback: Callable[..., Any],
    *callback_args: Any,
    qos_profile: Any = 10,
    allow_headerless: bool = False,
    use_message_filters: bool | None = None,
) -> SynchronizerHandle:
    """Subscribe to ``topics`` (``(msg_type, name)`` pairs) and call ``callback(*msgs, *callback_args)``
    on each approximately-synchronised set.

    ``use_message_filters``: ``None`` picks ``message_filters`` when importable and the project's
    implementation otherwise; ``True`` requires it; ``False`` forces the project's implementation.
    """
    if use_message_filters is None:
        use_message_filters = have_message_filters()
    if use_message_filters:
        import message_filters

        subs: list[Any] = [
            message_filters.Subscriber(node, msg_type, name, qos_profile=qos_profile)
            for msg_type, name in topics
        ]
        sync: Any = message_filters.ApproximateTimeSynchronizer(subs, queue_size, slop, allow_headerless)
        backend = "message_filters"
    else:
        subs = [Subscriber(node, msg_type, name, qos_profile=qos_profile) for msg_type, name in topics]
        sync = ApproximateTimeSynchronizer(
            subs,
            queue_size,
            slop,
            allow_headerless,
            clock_ns=lambda: int(node.get_clock().now().nanoseconds),
            logger=node.get_logger(),
        )
        backend = "evo1_ros"
    sync.registerCallback(callback, *callback_args)
    return SynchronizerHandle(synchronizer=sync, subscribers=subs, backend=backend, node=node)

"""Approximate-time synchroniser: reference comparison (hypothesis), edge cases, threads, real rclpy wiring."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from builtin_interfaces.msg import Time as TimeMsg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rclpy.duration import Duration
from std_msgs.msg import Header

from evo1_ros.ros.sync import (
    ApproximateTimePolicy,
    ApproximateTimeSynchronizer,
    HeaderlessMessageError,
    SimpleFilter,
    have_message_filters,
    make_approximate_synchronizer,
    message_stamp_ns,
    slop_to_ns,
)

MS = 1_000_000


class Stamped:
    """A minimal stamped message: identity is ``tag``, the stamp lives in a real ``std_msgs/Header``."""

    def __init__(self, stamp_ns: int, tag: Any = None) -> None:
        self.header = Header(stamp=TimeMsg(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000))
        self.tag = tag

    def __repr__(self) -> str:
        return f"Stamped({self.tag!r})"


class Source(SimpleFilter):
    """A filter source fed by hand (stands in for a subscription)."""

    def push(self, msg: Any) -> None:
        self.signalMessage(msg)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


def make_sync(
    n: int, queue_size: int, slop: float, **kw: Any
) -> tuple[list[Source], ApproximateTimeSynchronizer, Recorder]:
    sources = [Source() for _ in range(n)]
    sync = ApproximateTimeSynchronizer(sources, queue_size, slop, **kw)
    rec = Recorder()
    sync.registerCallback(rec)
    return sources, sync, rec


# ---------------------------------------------------------------------------------------------------
# Reference: a deliberately different, brute-force formulation of the rules.
#   * queues are lists of [stamp, msg] in first-arrival order (same stamp overwrites in place);
#   * every combination of candidate indices is enumerated, invalid ones discarded, and the one that
#     comes first in product order is the lexicographically smallest index tuple.
# ---------------------------------------------------------------------------------------------------


class ReferenceSync:
    def __init__(self, n: int, queue_size: int, slop: float) -> None:
        self.n, self.queue_size = n, queue_size
        self.slop_ns = Duration(seconds=slop).nanoseconds  # what upstream compares against
        self.queues: list[list[list[Any]]] = [[] for _ in range(n)]

    def add(self, i: int, stamp: int, msg: Any) -> tuple[Any, ...] | None:
        q = self.queues[i]
        for entry in q:
            if entry[0] == stamp:
                entry[1] = msg
                break
        else:
            q.append([stamp, msg])
        while len(q) > self.queue_size:
            oldest = min(e[0] for e in q)
            q[:] = [e for e in q if e[0] != oldest]

        ranked: list[list[int]] = []  # per input (own input: just [stamp])
        for j in range(self.n):
            if j == i:
                ranked.append([stamp])
                continue
            near = [
                (abs(s - stamp), pos, s)
                for pos, (s, _) in enumerate(self.queues[j])
                if abs(s - stamp) <= self.slop_ns
            ]
            if not near:
                return None
            near.sort()  # by delta, ties by first-arrival position
            ranked.append([s for _, _, s in near])

        def all_index_tuples(level: int) -> list[tuple[int, ...]]:
            if level == self.n:
                return [()]
            return [(k, *rest) for k in range(len(ranked[level])) for rest in all_index_tuples(level + 1)]

        valid = []
        for idx in all_index_tuples(0):
            stamps = [ranked[j][k] for j, k in enumerate(idx)]
            still_there = all(any(e[0] == s for e in self.queues[j]) for j, s in enumerate(stamps))
            if still_there and max(stamps) - min(stamps) < self.slop_ns:
                valid.append(idx)
        if not valid:
            return None
        best = min(valid)
        out = []
        for j, k in enumerate(best):
            s = ranked[j][k]
            entry = next(e for e in self.queues[j] if e[0] == s)
            self.queues[j].remove(entry)
            out.append(entry[1])
        return tuple(out)

    def stamps(self, j: int) -> list[int]:
        return [e[0] for e in self.queues[j]]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, int, float, list[tuple[int, int]]]:
    n = draw(st.integers(2, 3))
    queue_size = draw(st.integers(1, 5))
    # Few distinct stamps on a 0.5 ms grid (sometimes 1 ns off) and slops on the same grid, so that
    # duplicates, equal deltas (ties) and delta == slop / spread == slop happen often.
    slop = draw(
        st.one_of(
            st.integers(0, 12).map(lambda k: k * 0.0005),
            st.floats(min_value=0.0, max_value=0.006, allow_nan=False),
        )
    )
    stamp = st.builds(lambda k, j: k * MS // 2 + j, st.integers(0, 16), st.sampled_from([0, 0, 0, 0, 1]))
    events = draw(st.lists(st.tuples(st.integers(0, n - 1), stamp), max_size=40))
    return n, queue_size, slop, events


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
# Known-tricky cases, always run: a tie broken by insertion order; a 3-input product-order choice;
# a message that evicts itself from a full queue.
@example((2, 5, 0.005, [(1, 6 * MS), (1, 2 * MS), (0, 4 * MS)]))
@example((3, 5, 0.005, [(0, 7 * MS), (0, 12 * MS), (1, 6 * MS), (1, 14 * MS), (2, 10 * MS)]))
@example((2, 1, 0.001, [(1, 3 * MS), (0, 5 * MS), (0, 3 * MS), (1, 5 * MS)]))
def test_matches_reference(scenario: tuple[int, int, float, list[tuple[int, int]]]) -> None:
    n, queue_size, slop, events = scenario
    sources, sync, rec = make_sync(n, queue_size, slop)
    ref = ReferenceSync(n, queue_size, slop)
    for seq, (i, stamp) in enumerate(events):
        msg = Stamped(stamp, tag=(i, seq))
        expected = ref.add(i, stamp, msg)
        before = len(rec.calls)
        sources[i].push(msg)
        got = rec.calls[before:]
        assert got == ([expected] if expected is not None else []), f"event {seq}: {(i, stamp)}"
        for j in range(n):
            assert sync.policy.queued_stamps(j) == ref.stamps(j)


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_policy_direct_matches_synchronizer(scenario: tuple[int, int, float, list[tuple[int, int]]]) -> None:
    """The pure policy, fed (index, stamp, msg), gives what the message-level synchroniser gives."""
    n, queue_size, slop, events = scenario
    policy = ApproximateTimePolicy(n, queue_size, slop)
    sources, _, rec = make_sync(n, queue_size, slop)
    direct = []
    for seq, (i, stamp) in enumerate(events):
        msg = Stamped(stamp, tag=(i, seq))
        out = policy.add(i, stamp, msg)
        if out is not None:
            direct.append(out)
        sources[i].push(msg)
    assert direct == rec.calls


# ---------------------------------------------------------------------------------------------------
# Explicit cases
# ---------------------------------------------------------------------------------------------------


def test_messages_come_in_input_order_with_extra_args() -> None:
    sources = [Source() for _ in range(3)]
    sync = ApproximateTimeSynchronizer(sources, 5, 0.01)
    rec = Recorder()
    sync.registerCallback(rec, "extra", 7)
    a, b, c = Stamped(100 * MS, "a"), Stamped(101 * MS, "b"), Stamped(102 * MS, "c")
    sources[2].push(c)
    sources[0].push(a)
    assert rec.calls == []
    sources[1].push(b)
    assert rec.calls == [(a, b, c, "extra", 7)]
    assert all(sync.policy.queued_stamps(j) == [] for j in range(3))


def test_closest_candidate_wins() -> None:
    sources, _, rec = make_sync(2, 5, 0.01)
    far, near = Stamped(100 * MS, "far"), Stamped(104 * MS, "near")
    sources[0].push(far)
    sources[0].push(near)
    other = Stamped(103 * MS, "other")
    sources[1].push(other)
    assert rec.calls == [(near, other)]


def test_equal_deltas_keep_insertion_order() -> None:
    sources, _, rec = make_sync(2, 5, 0.005)
    later, earlier = Stamped(106 * MS, "later"), Stamped(100 * MS, "earlier")
    sources[0].push(later)  # inserted first, although its stamp is larger
    sources[0].push(earlier)
    trigger = Stamped(103 * MS, "t")  # both 3 ms away
    sources[1].push(trigger)
    assert rec.calls == [(later, trigger)]


def test_product_order_is_lexicographic_over_inputs() -> None:
    # New message on input 2 at 10 ms, slop 5 ms.
    # input 0 candidates by delta: 12 (2), 7 (3); input 1: 6 (4), 14 (4) (tie -> insertion order).
    # Product order: (12, 6) spread 6 invalid, (12, 14) spread 4 valid -> chosen, although (7, 6) is
    # also valid and uses input 1's first candidate.
    sources, sync, rec = make_sync(3, 5, 0.005)
    m = {t: Stamped(t * MS, t) for t in (12, 7, 6, 14)}
    sources[0].push(m[7])
    sources[0].push(m[12])
    sources[1].push(m[6])
    sources[1].push(m[14])
    trigger = Stamped(10 * MS, 10)
    sources[2].push(trigger)
    assert rec.calls == [(m[12], m[14], trigger)]
    assert sync.policy.queued_stamps(0) == [7 * MS] and sync.policy.queued_stamps(1) == [6 * MS]


def test_candidate_exactly_slop_away_is_kept_but_one_ns_more_is_not() -> None:
    slop = 0.004
    slop_ns = slop_to_ns(slop)
    policy = ApproximateTimePolicy(2, 5, slop)
    policy.add(0, 1000 * MS - slop_ns, "at_slop")
    policy.add(0, 1000 * MS + slop_ns + 1, "beyond")
    assert policy.candidates(1, 1000 * MS) == [[1000 * MS - slop_ns]]
    # ...yet a pair whose spread equals slop is never emitted.
    assert policy.add(1, 1000 * MS, "x") is None


def test_spread_equal_to_slop_not_matched_one_ns_less_matched() -> None:
    slop = 0.01
    slop_ns = slop_to_ns(slop)
    sources, sync, rec = make_sync(3, 5, slop)
    sources[0].push(Stamped(0, "a0"))
    sources[1].push(Stamped(slop_ns // 2, "b0"))
    sources[2].push(Stamped(slop_ns, "c0"))  # each delta <= slop, spread == slop
    assert rec.calls == []
    c1 = Stamped(slop_ns - 1, "c1")
    sources[2].push(c1)
    assert [tuple(m.tag for m in call) for call in rec.calls] == [("a0", "b0", "c1")]
    assert sync.policy.queued_stamps(2) == [slop_ns]


@pytest.mark.parametrize("slop", [0.1, 0.29, 0.3, 0.7, 1e-9, 3e-9, 0.0, 2.5, 0.123456789])
def test_slop_conversion_matches_rclpy_duration(slop: float) -> None:
    assert slop_to_ns(slop) == Duration(seconds=slop).nanoseconds
    assert ApproximateTimePolicy(2, 1, slop).slop_ns == Duration(seconds=slop).nanoseconds


def test_zero_slop_never_matches() -> None:
    sources, _, rec = make_sync(2, 5, 0.0)
    sources[0].push(Stamped(5))
    sources[1].push(Stamped(5))
    assert rec.calls == []


def test_queue_overflow_drops_oldest() -> None:
    sources, sync, rec = make_sync(2, 2, 0.0005)
    for t in (3, 1, 2):  # out of order: 1 ms is the smallest stamp and goes when the third arrives
        sources[0].push(Stamped(t * MS, t))
    assert sync.policy.queued_stamps(0) == [3 * MS, 2 * MS]
    sources[1].push(Stamped(1 * MS, "late"))
    assert rec.calls == []
    match = Stamped(2 * MS, "match")
    sources[1].push(match)
    assert [(a.tag, b.tag) for a, b in rec.calls] == [(2, "match")]
    assert sync.policy.queued_stamps(1) == [1 * MS]


def test_new_message_older_than_full_queue_drops_itself() -> None:
    sources, sync, rec = make_sync(2, 1, 0.0005)
    sources[1].push(Stamped(3 * MS, "b"))
    sources[0].push(Stamped(5 * MS, "a5"))
    assert rec.calls == []
    sources[0].push(Stamped(3 * MS, "a3"))  # evicts itself (smallest stamp in a full queue)
    assert rec.calls == []
    assert sync.policy.queued_stamps(0) == [5 * MS]


def test_duplicate_stamp_replaces_earlier_message() -> None:
    sources, sync, rec = make_sync(2, 3, 0.001)
    first, second = Stamped(7 * MS, "first"), Stamped(7 * MS, "second")
    sources[0].push(first)
    sources[0].push(second)
    assert sync.policy.queued_stamps(0) == [7 * MS]
    other = Stamped(7 * MS, "other")
    sources[1].push(other)
    assert rec.calls == [(second, other)]


def test_only_one_set_per_incoming_message() -> None:
    sources, sync, rec = make_sync(2, 5, 0.001)
    sources[0].push(Stamped(10 * MS, "a10"))
    sources[0].push(Stamped(30 * MS, "a30"))
    sources[1].push(Stamped(30 * MS, "b30"))
    assert [tuple(m.tag for m in c) for c in rec.calls] == [("a30", "b30")]
    assert sync.policy.queued_stamps(0) == [10 * MS]


def test_single_input_emits_every_message() -> None:
    sources, _, rec = make_sync(1, 2, 0.001)
    m = Stamped(1)
    sources[0].push(m)
    assert rec.calls == [(m,)]


def test_stamp_as_rclpy_time_and_split_fields() -> None:
    from rclpy.time import Time

    class WithRclpyTime:
        def __init__(self, ns: int) -> None:
            self.header = type("H", (), {"stamp": Time(nanoseconds=ns)})()

    assert message_stamp_ns(WithRclpyTime(12_345_678_901)) == 12_345_678_901
    assert message_stamp_ns(Stamped(3_000_000_002)) == 3_000_000_002


class FakeLogger:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, text: str, **_: Any) -> None:
        self.warnings.append(text)


def test_headerless_rejected_and_logged() -> None:
    with pytest.raises(HeaderlessMessageError, match=r"has no header\.stamp"):
        message_stamp_ns(object())
    assert issubclass(HeaderlessMessageError, ValueError)
    logger = FakeLogger()
    sources, sync, rec = make_sync(2, 5, 0.01, logger=logger)
    sources[0].push(object())
    sources[1].push(Stamped(5))
    assert rec.calls == []
    assert sync.rejected_headerless == 1
    assert len(logger.warnings) == 1 and "allow_headerless" in logger.warnings[0]
    assert sync.policy.queued_stamps(0) == []
    # The default (rclpy) logger accepts the throttled warning too.
    sources2, sync2, _ = make_sync(2, 5, 0.01)
    sources2[1].push(object())
    assert sync2.rejected_headerless == 1


def test_headerless_allowed_uses_clock() -> None:
    now = [50 * MS]
    sources, sync, rec = make_sync(2, 5, 0.01, allow_headerless=True, clock_ns=lambda: now[0])

    class Bare:
        pass

    bare = Bare()
    sources[0].push(bare)
    assert sync.policy.queued_stamps(0) == [50 * MS]
    stamped = Stamped(52 * MS)
    sources[1].push(stamped)
    assert rec.calls == [(bare, stamped)]
    # The default clock is the ROS clock: a headerless message gets a current, positive stamp.
    assert message_stamp_ns(Bare(), allow_headerless=True) > 0


def test_register_and_unregister_callbacks() -> None:
    sources, sync, rec = make_sync(2, 5, 0.01)
    second = Recorder()
    conn = sync.registerCallback(second, "x")
    sources[0].push(Stamped(1))
    sources[1].push(Stamped(1))
    assert len(rec.calls) == 1 and len(second.calls) == 1 and second.calls[0][-1] == "x"
    sync.unregisterCallback(conn)
    sources[0].push(Stamped(2 * MS))
    sources[1].push(Stamped(2 * MS))
    assert len(rec.calls) == 2 and len(second.calls) == 1


def test_add_returns_match_and_validates() -> None:
    _, sync, _ = make_sync(2, 5, 0.01)
    assert sync.add(Stamped(1, "a"), 0) is None
    out = sync.add(Stamped(2, "b"), 1)
    assert out is not None and [m.tag for m in out] == ["a", "b"]
    with pytest.raises(IndexError):
        sync.policy.add(2, 0, "x")
    with pytest.raises(ValueError, match="queue_size"):
        ApproximateTimePolicy(2, 0, 0.1)
    with pytest.raises(ValueError, match="slop"):
        ApproximateTimePolicy(2, 1, -0.1)


def test_concurrent_feeding_matches_every_stamp_once() -> None:
    n_msgs = 400
    lock = threading.Lock()
    seen: list[tuple[Any, ...]] = []

    def collect(*msgs: Any) -> None:
        with lock:
            seen.append(msgs)

    sources = [Source(), Source()]
    sync = ApproximateTimeSynchronizer(sources, n_msgs, 0.0005)
    sync.registerCallback(collect)
    start = threading.Barrier(2)

    def feed(i: int) -> None:
        start.wait()
        for k in range(n_msgs):
            sources[i].push(Stamped(k * MS, (i, k)))

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(seen) == n_msgs
    assert sorted(a.tag[1] for a, _ in seen) == list(range(n_msgs))
    assert all(a.tag == (0, b.tag[1]) and b.tag[0] == 1 for a, b in seen)


# ---------------------------------------------------------------------------------------------------
# Real rclpy wiring (in-process, private domain, localhost discovery)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.skipif(have_message_filters(), reason="message_filters is installed here")
def test_forcing_message_filters_without_it_raises() -> None:
    with pytest.raises(ImportError):
        make_approximate_synchronizer(object(), [], 1, 0.1, print, use_message_filters=True)


class FakeNode:
    """Records create_subscription calls so the wiring can be checked without DDS."""

    def __init__(self) -> None:
        self.subs: list[tuple[Any, str, Any, Any]] = []
        self.destroyed: list[Any] = []

    def create_subscription(self, msg_type: Any, topic: str, callback: Any, qos: Any, **_: Any) -> Any:
        handle = object()
        self.subs.append((msg_type, topic, callback, qos, handle))
        return handle

    def destroy_subscription(self, handle: Any) -> bool:
        self.destroyed.append(handle)
        return True

    def get_clock(self) -> Any:
        from rclpy.clock import ROSClock

        return ROSClock()

    def get_logger(self) -> Any:
        return FakeLogger()


def test_project_backend_wiring_with_fake_node() -> None:
    node = FakeNode()
    rec = Recorder()
    handle = make_approximate_synchronizer(
        node, [(str, "/a"), (int, "/b")], 4, 0.01, rec, "tag", qos_profile=7, use_message_filters=False
    )
    assert handle.backend == "evo1_ros"
    assert [(t, name, qos) for t, name, _, qos, _ in node.subs] == [(str, "/a", 7), (int, "/b", 7)]
    cb_a, cb_b = node.subs[0][2], node.subs[1][2]
    a, b = Stamped(5 * MS, "a"), Stamped(6 * MS, "b")
    cb_b(b)
    cb_a(a)
    assert rec.calls == [(a, b, "tag")]
    handle.destroy()
    assert node.destroyed == [s[4] for s in node.subs]
    assert handle.subscribers == []


def test_wired_to_real_node(ros_env: dict[str, str]) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image, JointState

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = executor = handle = None
    try:
        node = rclpy.create_node("sync_test", context=ctx)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        matched: list[tuple[Any, ...]] = []
        handle = make_approximate_synchronizer(
            node,
            [(Image, "/cameras/front/image_raw"), (JointState, "/xarm/joint_states")],
            10,
            0.01,
            lambda *msgs: matched.append(msgs),
        )
        assert handle.backend == ("message_filters" if have_message_filters() else "evo1_ros")
        pub_img = node.create_publisher(Image, "/cameras/front/image_raw", 10)
        pub_js = node.create_publisher(JointState, "/xarm/joint_states", 10)
        deadline = time.monotonic() + 5.0
        k = 0
        while not matched and time.monotonic() < deadline:
            stamp = TimeMsg(sec=100 + k, nanosec=0)
            img = Image(height=1, width=1, encoding="mono8", step=1, data=[k % 256])
            img.header.stamp = stamp
            js = JointState(name=["joint1"], position=[float(k)])
            js.header.stamp = TimeMsg(sec=100 + k, nanosec=3_000_000)  # 3 ms apart: within slop
            pub_img.publish(img)
            pub_js.publish(js)
            k += 1
            for _ in range(5):
                executor.spin_once(timeout_sec=0.02)
        assert matched, "no synchronised pair within 5 s"
        img_msg, js_msg = matched[0]
        assert isinstance(img_msg, Image) and isinstance(js_msg, JointState)
        assert img_msg.header.stamp.sec == js_msg.header.stamp.sec
        assert js_msg.position[0] == float(img_msg.data[0])
        if handle.backend == "evo1_ros":  # rejection goes through the node's real logger
            assert handle.synchronizer.add(object(), 0) is None
            assert handle.synchronizer.rejected_headerless == 1
    finally:
        if handle is not None:
            handle.destroy()
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.shutdown(context=ctx)
    assert not ctx.ok()

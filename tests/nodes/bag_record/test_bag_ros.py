"""`evo1 bag record/play` over real DDS, and to-lerobot against the live recorder node on the same messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from rclpy.parameter import Parameter

from evo1_ros.nodes.bag_play import BagPlayer, PlayOptions
from evo1_ros.nodes.bag_record import BagRecordNode
from evo1_ros.polling import wait_until
from fixtures.bags import per_topic, read_all, write_teleop_bag
from fixtures.datasets import CAMERAS, HEIGHT, JOINTS, WIDTH, write_features
from fixtures.ros import call
from recording.bag.bagio import BagWriter, open_bag, qos_from_connection

pytestmark = pytest.mark.ros


def _record_while_playing(ros, src: Path, out: Path, **play) -> tuple[Path, list[float]]:
    with open_bag(src) as bag:
        topics = sorted(bag.topics())
        total = sum(c.msgcount for c in bag.connections)
    writer = BagWriter(out)
    rec = ros.add(BagRecordNode(writer, topics, discovery_period=0.1, context=ros.context))
    player = BagPlayer(ros.node("player"), src, PlayOptions(wait_for_subscribers=20.0, **play))
    assert wait_until(lambda: set(rec.subscribed) == set(topics), 20), rec.subscribed
    stats = player.play()
    assert sum(stats.counts.values()) == total
    assert wait_until(lambda: sum(writer.counts.values()) >= total, 20), writer.counts
    rec.close()
    return out, stats.lateness


def test_record_play_record_is_identical(ros, tmp_path):
    """Play a bag while recording it: same messages per topic (bytes and order), same types and QoS."""
    src = write_teleop_bag(tmp_path / "a", seconds=1.0, reliable=True)
    copy, _ = _record_while_playing(ros, src, tmp_path / "b")
    a, b = per_topic(read_all(src)), per_topic(read_all(copy))
    assert a.keys() == b.keys()
    for topic in a:
        assert b[topic] == a[topic], topic
    with open_bag(src) as x, open_bag(copy) as y:
        qa = {c.topic: (c.msgtype, c.digest, qos_from_connection(c).reliability) for c in x.connections}
        qb = {c.topic: (c.msgtype, c.digest, qos_from_connection(c).reliability) for c in y.connections}
    assert qa == qb
    meta = yaml.safe_load((copy / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9


def test_play_timing_and_rate(ros, tmp_path):
    """Never early, and --rate scales time (the benchmark measures p50/p99; bounds here are loose).

    Lower bounds are exact (a message is never published before its due time, so the copy cannot be
    shorter than span / rate); the upper bound grows with the player's own measured lateness, so a
    loaded CI machine does not fail it while a player that ignores --rate does.
    """
    src = write_teleop_bag(tmp_path / "a", seconds=1.0, reliable=True)
    copy, lateness = _record_while_playing(ros, src, tmp_path / "b", rate=2.0)
    late = np.asarray(lateness)
    assert late.min() >= -1e-3, late.min()
    assert np.median(late) < 0.25, np.percentile(late, [50, 99])
    with open_bag(src) as x, open_bag(copy) as y:
        span_src = (x.reader.end_time - x.reader.start_time) * 1e-9
        span_copy = (y.reader.end_time - y.reader.start_time) * 1e-9
    # the copy is stretched at most by the player's worst lateness (plus delivery): rate 1 would fail
    assert span_src / 2 - 0.02 < span_copy < span_src / 2 + late.max() + 0.1, (
        span_src,
        span_copy,
        late.max(),
    )


def test_to_lerobot_equals_the_live_recorder(ros, tmp_path):
    """Same messages into the recorder node (live, sim time) and into a bag -> the same rows.

    The test drives /clock: for each frame it publishes the cameras, joint states and (every third
    frame) an accepted trajectory, waits until both the recorder and the bag recorder have them,
    then advances /clock by one frame period so the recorder's frame timer fires once.
    """
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, JointState
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from evo1_msgs.srv import StartEpisode
    from evo1_ros.nodes.recorder import RecorderNode
    from evo1_ros.ros.image import numpy_to_image
    from evo1_ros.ros.qos import COMMAND, SENSOR, STATE
    from recording.bag.to_lerobot import ConvertOptions, convert, recorder_parameters
    from recording.dataset.reader import LeRobotReader
    from recording.dataset.validator import validate_dataset

    features = write_features(tmp_path / "f.yaml", fps=10)
    overrides = {
        "features_file": str(features),
        "cameras": list(CAMERAS),
        "image_width": WIDTH,
        "image_height": HEIGHT,
        "fps": 10,
        "stamp_source": "header",
        "camera_max_age": 0.25,
        "state_max_age": 0.25,
        "reset_time": 0.0,
        "episode_time_limit": 0.0,
    }
    params = recorder_parameters(None, overrides)
    recorder = RecorderNode(
        context=ros.context,
        parameter_overrides=[
            Parameter("use_sim_time", value=True),
            Parameter("dataset_dir", value=str(tmp_path / "live")),
            *[Parameter(k, value=v) for k, v in overrides.items()],
        ],
    )
    ros.add(recorder)
    cam_topics = [f"/cameras/{c}/image_raw" for c in CAMERAS]
    topics = [*cam_topics, "/xarm/joint_states", "/xarm/accepted_trajectory", "/clock"]
    writer = BagWriter(tmp_path / "bag")
    bagrec = ros.add(BagRecordNode(writer, topics, discovery_period=0.1, context=ros.context))
    pub = ros.node("pub")
    clock = pub.create_publisher(Clock, "/clock", 10)
    cams = [pub.create_publisher(Image, t, SENSOR) for t in cam_topics]
    js = pub.create_publisher(JointState, "/xarm/joint_states", STATE)
    traj = pub.create_publisher(JointTrajectory, "/xarm/accepted_trajectory", COMMAND)
    assert wait_until(lambda: set(bagrec.subscribed) == set(topics), 20), bagrec.subscribed

    def stamp(ns: int) -> Time:
        return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def tick_clock(ns: int) -> None:
        n = writer.counts.get("/clock", 0)
        clock.publish(Clock(clock=stamp(ns)))
        assert wait_until(lambda: recorder.get_clock().now().nanoseconds == ns, 10)
        assert wait_until(lambda: writer.counts.get("/clock", 0) > n, 10)

    t0 = 1_000_000_000_000
    tick_clock(t0)
    client = ros.node("client")
    res = call(client, StartEpisode, "/recorder/start_episode", StartEpisode.Request(task="t"))
    assert res.success, res.message
    period = 100_000_000
    frames = 20
    for k in range(1, frames + 1):
        t = t0 + k * period
        before = {s: recorder.sampler[s].count for s in recorder.sampler.streams}
        commands, logged = recorder.tracker.commands, sum(writer.counts.values())
        sent = 0
        for i, p in enumerate(cams):
            img = np.full((HEIGHT, WIDTH, 3), (10 * k + 50 * i) % 256, np.uint8)
            p.publish(numpy_to_image(img, "rgb8", stamp=stamp(t - 50_000_000)))
            sent += 1
        q = 0.01 * k + 0.1 * np.arange(len(JOINTS))
        js.publish(_js(JointState, stamp(t - 40_000_000), q))
        sent += 1
        if k % 3 == 1:
            # a ramp: sampled between its points at the frame times, as the driver runs it
            pts = [_pt(JointTrajectoryPoint, q + 0.05, 0), _pt(JointTrajectoryPoint, q + 0.35, 250_000_000)]
            msg = JointTrajectory(joint_names=list(JOINTS), points=pts)
            msg.header.stamp = stamp(t - 60_000_000)
            traj.publish(msg)
            sent += 1
            assert wait_until(lambda c=commands: recorder.tracker.commands > c, 10)
        assert wait_until(
            lambda b=before: all(
                recorder.sampler[s].count > b[s] for s in [*cam_topics, "/xarm/joint_states"]
            ),
            10,
        ), k
        assert wait_until(lambda n=logged + sent: sum(writer.counts.values()) >= n, 10), (k, writer.counts)
        sampled = recorder.sampler.frames_sampled
        tick_clock(t)
        assert wait_until(lambda n=sampled: recorder.sampler.frames_sampled > n, 10), k
    saved = call(client, Trigger, "/recorder/save_episode")
    assert saved.success, saved.message
    bagrec.close()

    live = LeRobotReader(tmp_path / "live")
    assert live.episode_length(0) >= frames - 1
    report = convert(
        [tmp_path / "bag"], tmp_path / "offline", ConvertOptions(params, task="t", use_sim_time=True)
    )
    assert report.episodes == [0]
    assert validate_dataset(tmp_path / "offline").ok
    off = LeRobotReader(tmp_path / "offline")
    a, b = live.episode_columns(0), off.episode_columns(0)
    assert live.episode_length(0) == off.episode_length(0)
    for key in ("observation.state", "action", "timestamp", "frame_index"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    n = live.episode_length(0)
    ts = [i / 10 for i in range(n)]
    for cam in CAMERAS:
        np.testing.assert_array_equal(live.decode_video(0, cam, ts), off.decode_video(0, cam, ts))


def _js(cls, stamp, q):
    msg = cls(name=list(JOINTS), position=[float(v) for v in q])
    msg.header.stamp = stamp
    return msg


def _pt(cls, q, nanosec: int):
    pt = cls(positions=[float(v) for v in q])
    pt.time_from_start.nanosec = nanosec
    return pt


def test_record_cli_ctrl_c_closes_a_valid_bag_and_prints_counts(ros, spawn, tmp_path):
    """`evo1 bag record --profile policy --storage sqlite3`: custom types, late topics, SIGINT -> valid bag."""
    import re
    import signal
    import sys

    from std_msgs.msg import String

    from evo1_msgs.msg import PolicyStatus
    from evo1_ros.ros.qos import STATUS

    out = tmp_path / "rec"
    evo1 = str(Path(sys.executable).parent / "evo1")
    proc = spawn(
        [evo1, "bag", "record", "--profile", "policy", "/extra", "-s", "sqlite3", "-o", str(out)], "rec"
    )
    node = ros.node("pub")
    status = node.create_publisher(PolicyStatus, "/evo1_policy/status", STATUS)
    extra = node.create_publisher(String, "/extra", STATUS)
    assert proc.wait_for_output(r"recording /evo1_policy/status", 30), proc.output()
    assert proc.wait_for_output(r"recording /extra", 30), proc.output()
    assert wait_until(lambda: status.get_subscription_count() > 0 and extra.get_subscription_count() > 0, 10)
    for k in range(7):
        status.publish(PolicyStatus(task=f"t{k}", chunks_computed=k))
    for k in range(3):
        extra.publish(String(data=f"s{k}"))
    from rclpy.duration import Duration

    # reliable: acknowledged = in the recorder's reader queue; Ctrl-C drains that queue before closing
    assert status.wait_for_all_acked(Duration(seconds=10)) and extra.wait_for_all_acked(Duration(seconds=10))
    proc.send_signal(signal.SIGINT)
    assert proc.proc.wait(timeout=20) == 0, proc.output()
    text = proc.output()
    assert re.search(r"/evo1_policy/status\s+7 msgs", text) and re.search(r"/extra\s+3 msgs", text), text
    assert "never published (not in the bag)" in text  # the profile's other topics
    with open_bag(out) as bag:
        assert bag.reader.connections[0].ext.serialization_format == "cdr"
        got = [(c.topic, raw) for c, _, raw in bag.messages(bag.connections)]
    from recording.bag.bagio import deserialize

    tasks = [
        deserialize(raw, "evo1_msgs/msg/PolicyStatus").task for t, raw in got if t == "/evo1_policy/status"
    ]
    assert tasks == [f"t{k}" for k in range(7)]
    assert [deserialize(raw, "std_msgs/msg/String").data for t, raw in got if t == "/extra"] == [
        "s0",
        "s1",
        "s2",
    ]
    assert next(out.glob("*.db3")).is_file()


def test_split_per_episode_and_on_request(ros, tmp_path):
    """--split-episodes: a new bag file each time /recorder/status enters RECORDING; ~/split on demand."""
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from evo1_msgs.msg import RecorderStatus
    from evo1_ros.ros.qos import STATUS

    writer = BagWriter(tmp_path / "session")
    rec = ros.add(
        BagRecordNode(
            writer, ["/recorder/status", "/x"], episode_split=True, discovery_period=0.1, context=ros.context
        )
    )
    node = ros.node("pub")
    status = node.create_publisher(RecorderStatus, "/recorder/status", STATUS)
    x = node.create_publisher(String, "/x", STATUS)
    assert wait_until(lambda: set(rec.subscribed) == {"/recorder/status", "/x"}, 20)
    assert wait_until(lambda: status.get_subscription_count() and x.get_subscription_count(), 10)
    sent = 0
    for state in (0, 1, 1, 0, 1, 0):  # idle, episode 0, idle, episode 1, idle
        status.publish(RecorderStatus(state=state))
        x.publish(String(data=str(state)))
        sent += 2
        assert wait_until(lambda n=sent: sum(writer.counts.values()) >= n, 10)
    assert len(writer.paths) == 3  # before the first episode, episode 0, episode 1
    res = call(node, Trigger, "/bag_recorder/split")
    assert res.success and len(writer.paths) == 4
    x.publish(String(data="after"))
    assert wait_until(lambda: sum(writer.counts.values()) >= sent + 1, 10)
    rec.close()
    states = []
    for path in writer.paths:
        with open_bag(path, allow_empty=True) as bag:
            states.append([raw for c, _, raw in bag.messages(bag.connections) if c.topic == "/x"])
    from recording.bag.bagio import deserialize

    data = [[deserialize(r, "std_msgs/msg/String").data for r in s] for s in states]
    assert data == [["0"], ["1", "1", "0"], ["1", "0"], ["after"]]


def test_play_window_topics_and_loop(ros, tmp_path):
    """--start/--duration/--topics select exactly the bag's messages in that window; --loop repeats."""
    import threading

    src = write_teleop_bag(tmp_path / "a", seconds=1.0, reliable=True)
    with open_bag(src) as bag:
        t0 = bag.reader.start_time
        want = [
            raw
            for c, t, raw in bag.messages(bag.connections)
            if c.topic == "/xarm/joint_states" and t0 + 0.3e9 <= t < t0 + 0.5e9
        ]
    copy, _ = _record_subset(
        ros, src, tmp_path / "b", PlayOptions(start=0.3, duration=0.2, topics=["/xarm/joint_states"])
    )
    assert per_topic(read_all(copy)) == {"/xarm/joint_states": [bytes(r) for r in want]}

    writer = BagWriter(tmp_path / "loop")
    rec = ros.add(BagRecordNode(writer, ["/xarm/joint_states"], discovery_period=0.1, context=ros.context))
    player = BagPlayer(
        ros.node("looper"),
        src,
        PlayOptions(rate=4.0, topics=["/xarm/joint_states"], loop=True, wait_for_subscribers=20.0),
    )
    thread = threading.Thread(target=player.play)
    thread.start()
    try:
        n = len(want) * 5  # 100 messages per pass; more than one pass means it looped
        assert wait_until(lambda: writer.counts.get("/xarm/joint_states", 0) > 100 + n, 30), writer.counts
    finally:
        player.stop.set()
        thread.join(10)
    rec.close()


def _record_subset(ros, src: Path, out: Path, options: PlayOptions) -> tuple[Path, list[float]]:
    topics = list(options.topics)
    writer = BagWriter(out)
    rec = ros.add(BagRecordNode(writer, topics, discovery_period=0.1, context=ros.context))
    options.wait_for_subscribers = 20.0
    player = BagPlayer(ros.node("player_subset"), src, options)
    assert wait_until(lambda: set(rec.subscribed) == set(topics), 20), rec.subscribed
    stats = player.play()
    total = sum(stats.counts.values())
    assert wait_until(lambda: sum(writer.counts.values()) >= total, 20), writer.counts
    rec.close()
    return out, stats.lateness

"""`evo1 bag to-lerobot`: bag(s) -> LeRobot v2.1 dataset, through the recorder node's own frame logic.

The recorder's parameters (config/recorder.yaml: cameras and their topics, joint states, action
source/topic, max ages, stamp source, fps, features and task files) decide the mapping, and
:class:`recording.recorder.frame_assembly.FrameAssembler` turns messages into rows, exactly as in the node:
the bag's messages are fed in log order (log time = arrival time) and the frame clock ticks at
integer multiples of ``1/fps`` on the ROS clock, which is the bag's log time, or -- for a bag with
``/clock`` converted with ``use_sim_time`` -- the recorded ``/clock`` (a tick at the first clock value
at or after each due time, as an rclpy timer on sim time does). No ROS runtime is needed.

Episodes are the bag files (one episode per bag; a folder of split bags gives one per file), or the
recorder's episode events (``/recorder/status`` entering and leaving RECORDING). The task is
``--task`` (a catalogue id or free text), the newest ``std_msgs/String`` on ``--task-topic``, the
recorder status' task (events), or the recorder's ``default_task``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evo1_ros.parameters import from_parameters
from evo1_ros.paths import config_file
from evo1_ros.ros.stamps import stamp_to_nanoseconds, stamp_to_seconds
from recording.bag.bagio import BagError, bag_files, deserialize, open_bag
from recording.dataset.features import load_features_config
from recording.recorder.frame_assembly import FrameAssembler, StreamNames
from recording.recorder.recorder_setup import RecorderConfig, build_features, open_or_create, video_settings
from recording.tasks_catalogue import load_tasks, resolve_task

RECORDING_STATE = 1  # evo1_msgs/RecorderStatus.RECORDING


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``NAME:=VALUE`` recorder parameter overrides (`-p` of `evo1 bag to-lerobot|eval`); values parsed as YAML."""
    out: dict[str, Any] = {}
    for item in items:
        if ":=" not in item:
            raise BagError(f"-p {item!r}: use NAME:=VALUE")
        k, v = item.split(":=", 1)
        out[k] = yaml.safe_load(v)
    return out


def recorder_parameters(path: Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recorder node's parameters from its YAML (``recorder.ros__parameters``) plus overrides."""
    path = path or config_file("recorder.yaml")
    data = yaml.safe_load(Path(path).read_text()) or {}
    block = next((v.get("ros__parameters") for v in data.values() if isinstance(v, dict)), None)
    if not isinstance(block, dict):
        raise BagError(f"{path}: no '<node>: ros__parameters:' block")
    params = dict(block)
    for key, value in (overrides or {}).items():
        if key not in params:
            raise BagError(f"unknown recorder parameter {key!r} (known: {sorted(params)})")
        params[key] = value
    return params


def check_recorder_parameters(params: dict[str, Any]) -> None:
    """Judge the values by the recorder node's own declarations (ranges, choices), as at its start."""
    try:  # the node-only parameters in the file (dataset_dir, ...) are not RecorderConfig's: ignored
        from_parameters(RecorderConfig, params)
    except (ValueError, TypeError) as exc:
        raise BagError(f"recorder parameters: {exc}") from exc


@dataclass
class ConvertOptions:
    params: dict[str, Any]
    task: str = ""
    task_topic: str = ""
    episodes: str = "bag"  # bag | events
    use_sim_time: bool = False
    status_topic: str = "/recorder/status"


@dataclass
class ConvertReport:
    episodes: list[int] = field(default_factory=list)
    frames: int = 0
    dropped: int = 0
    skipped: list[str] = field(default_factory=list)  # episodes without frames
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def required_topics(params: dict[str, Any]) -> list[str]:
    """The topics the recorder's parameters read: cameras, joint states and (trajectory source) actions."""
    topics = [params["camera_topic"].replace("{name}", str(c)) for c in params["cameras"]]
    topics.append(params["joint_states_topic"])
    if params["action_source"] == "trajectory":
        topics.append(params["action_topic"])
    return topics


def _period_ns(fps: int) -> int:
    return int(float(1.0 / fps) * 1e9)  # as rclpy's create_timer(1.0 / fps)


class _Converter:
    def __init__(self, out: Path, options: ConvertOptions) -> None:
        p = options.params
        self.o = options
        self.p = p
        check_recorder_parameters(p)
        base, cfg = load_features_config(
            Path(p["features_file"]) if p.get("features_file") else config_file("dataset_features.yaml")
        )
        self.features = build_features(
            base, list(p["cameras"]), int(p["image_width"]), int(p["image_height"])
        )
        video, overridden = video_settings(cfg, p.get("video_codec") or "")
        tasks_file = p.get("tasks_file") or ""
        try:
            self.catalogue = load_tasks(Path(tasks_file) if tasks_file else config_file("tasks.yaml"))
        except (ValueError, FileNotFoundError):
            if tasks_file:
                raise
            self.catalogue = {}
        self.writer, _ = open_or_create(
            out,
            self.features,
            int(p["fps"]),
            robot_type=p.get("robot_type") or cfg.get("robot_type"),
            video=video,
            video_overridden=overridden,
        )
        self.period_ns = _period_ns(int(p["fps"]))
        self.cam_topics = {c.name: p["camera_topic"].replace("{name}", c.name) for c in self.features.cameras}
        self.action_topic = p["action_topic"] if p["action_source"] == "trajectory" else None
        self.report = ConvertReport()
        self.task_text = ""
        self._warned: set[str] = set()

    def _warn(self, key: str, text: str) -> None:
        if key not in self._warned:  # once per key and conversion (throttled, as the node does)
            self._warned.add(key)
            self.report.warnings.append(text)

    def new_assembler(self) -> FrameAssembler:
        p = self.p
        return FrameAssembler(
            self.features,
            self.writer,
            StreamNames(self.cam_topics, p["joint_states_topic"], self.action_topic),
            camera_max_age=float(p["camera_max_age"]),
            state_max_age=float(p["state_max_age"]),
            action_max_age=float(p["action_max_age"]),
            resize_images=bool(p["resize_images"]),
            warn=self._warn,
            units=str(p.get("units", "rep103")),
        )

    def topics(self) -> list[str]:
        t = [*self.cam_topics.values(), self.p["joint_states_topic"]]
        if self.action_topic:
            t.append(self.action_topic)
        return t

    def task(self, status_task: str = "") -> str:
        text = self.o.task or self.task_text or status_task or self.p.get("default_task") or ""
        if not text:
            raise BagError("no task: pass --task TEXT (or --task-topic / a recorder default_task)")
        return resolve_task(self.catalogue, text)

    def convert(self, bags: Sequence[Path]) -> ConvertReport:
        t0 = time.perf_counter()
        try:
            for path in bags:
                self._convert_bag(path)
        finally:
            self.writer.close()
        self.report.seconds = time.perf_counter() - t0
        return self.report

    def _convert_bag(self, path: Path) -> None:
        with open_bag(path) as bag:
            want = self.topics()  # present in the bag: convert_bags checked every bag before writing
            extra = [self.o.task_topic] if self.o.task_topic else []
            if self.o.episodes == "events":
                extra.append(self.o.status_topic)
            if self.o.use_sim_time:
                extra.append("/clock")
            conns = bag.select([*want, *extra])
            asm = self.new_assembler()
            recording = self.o.episodes == "bag"
            if recording:
                self._start(asm)
            sim = self.o.use_sim_time
            clock_ns: int | None = None
            next_due: int | None = None
            for conn, t_ns, raw in bag.messages(conns):
                topic = conn.topic
                if sim:
                    if topic == "/clock":
                        msg = deserialize(raw, conn.msgtype)
                        clock_ns = stamp_to_nanoseconds(msg.clock)
                        if next_due is None or clock_ns >= next_due:
                            if recording:
                                self._tick(asm, clock_ns, clock_ns)
                            next_due = (clock_ns // self.period_ns + 1) * self.period_ns
                        continue
                    if clock_ns is None:
                        continue  # ROS time is 0 until the first /clock: the node would see nothing usable
                    now_ns = clock_ns
                else:
                    if next_due is None:
                        next_due = (t_ns // self.period_ns + 1) * self.period_ns
                    while next_due <= t_ns:  # the ticks due before this message arrived
                        if recording:
                            self._tick(asm, next_due, next_due)
                        next_due += self.period_ns
                    now_ns = t_ns
                if topic == self.o.status_topic and self.o.episodes == "events":
                    status = deserialize(raw, conn.msgtype)
                    if status.state == RECORDING_STATE and not recording:
                        recording = True
                        self._start(asm, status.task)
                    elif status.state != RECORDING_STATE and recording:
                        recording = False
                        self._save(asm, path)
                    continue
                if topic == self.o.task_topic:
                    self.task_text = str(deserialize(raw, conn.msgtype).data)
                    continue
                self._feed(asm, topic, deserialize(raw, conn.msgtype), now_ns)
            if recording:
                self._save(asm, path)

    def _stream_now(self, now_ns: int) -> float:
        return now_ns * 1e-9  # receive: arrival (log) time; header: the ROS time

    def _feed(self, asm: FrameAssembler, topic: str, msg: Any, now_ns: int) -> None:
        now = now_ns * 1e-9
        header = self.p["stamp_source"] == "header"

        def stamp(m: Any) -> float:
            t = stamp_to_seconds(m.header.stamp) if header else 0.0
            return t if t > 0 else now

        if topic == self.p["joint_states_topic"]:
            asm.on_joint_state(msg, stamp(msg))
        elif topic == self.action_topic:
            asm.on_trajectory(msg, now, now)
        else:
            for cam, t in self.cam_topics.items():
                if t == topic:
                    asm.on_image(cam, msg, stamp(msg))

    def _tick(self, asm: FrameAssembler, now_ns: int, stream_ns: int) -> None:
        asm.tick(now_ns * 1e-9, self._stream_now(stream_ns))

    def _start(self, asm: FrameAssembler, status_task: str = "") -> None:
        self.writer.start_episode(self.task(status_task))
        asm.start_episode()

    def _save(self, asm: FrameAssembler, path: Path) -> None:
        asm.flush_pending()
        self.report.dropped += asm.sampler.frames_dropped
        if self.writer.episode_frames == 0:
            self.writer.discard_episode()
            summary = asm.sampler.drop_summary()
            self.report.skipped.append(f"{path}: no frames ({summary or 'no frame tick while recording'})")
            return
        info = self.writer.save_episode()
        self.report.episodes.append(info.episode_index)
        self.report.frames += info.length


def convert(
    bags: Sequence[Path | str],
    out: Path | str,
    options: ConvertOptions,
    progress: Callable[[str], None] | None = None,
) -> ConvertReport:
    """Convert ``bags`` (bag folders or folders of split bags) into the dataset at ``out`` (appended)."""
    files = [f for b in bags for f in bag_files(b)]
    if not files:
        raise BagError("no bag given")
    want = required_topics(options.params)
    for f in files:  # fail on a bad bag or a missing topic before anything is written
        with open_bag(f) as bag:
            have = bag.topics()
        missing = [t for t in want if t not in have]
        if missing:
            raise BagError(
                f"{f}: recorder topic(s) {missing} not in the bag (it has {sorted(have)}); "
                "remap with -p camera_topic:=... / joint_states_topic:=... / action_topic:=..."
            )
    out = Path(out).expanduser()
    existed = out.exists()
    report = _Converter(out, options).convert(files)
    if not report.episodes and not existed:  # an empty dataset is not loadable: leave nothing behind
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    if progress:
        for w in report.warnings:
            progress(f"warning: {w}")
    return report

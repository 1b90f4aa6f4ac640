"""ROS 2 node `recorder`: teleop demonstrations -> LeRobot v2.1 dataset, one episode at a time.

Subscribes the cameras (``/cameras/<name>/image_raw``), ``/xarm/joint_states`` and the action source
(the trajectories the driver accepted, ``/xarm/accepted_trajectory``, sampled at frame time with the
driver's own interpolation; or -- for free-drive demos -- the next frame's measured state). Recording
the *accepted* stream, not ``/xarm/joint_trajectory``, keeps commands the driver rejected (fault,
disabled, stopped, free-drive, out of limits) out of the dataset. A frame timer in its own callback
group samples every stream at ``fps``; a stale stream drops the frame and is counted. Stream ages run
on the monotonic clock (``stamp_source: receive``), so a jumping ROS clock cannot make a stream look
fresh; with ``stamp_source: header`` a message stamped in the future is stale and reported as a clock
problem. Episodes are started, saved and discarded through services; saving runs in a worker thread,
so encoding never blocks a ROS callback. All logic that needs no ROS lives in stream_sampling,
command_tracker, episode_session and recorder_setup; the frame logic (messages -> rows) is
frame_assembly's, which `evo1 bag to-lerobot` runs on bags.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from evo1_msgs.msg import RecorderStatus
from evo1_msgs.srv import StartEpisode
from evo1_ros.parameters import ParameterError, nested, param, validate_fields
from evo1_ros.paths import config_file
from evo1_ros.ros.node_runner import run_node
from evo1_ros.ros.params import declare_config
from evo1_ros.ros.qos import SENSOR, STATUS
from evo1_ros.ros.stamps import stamp_to_seconds
from recording.dataset.errors import DatasetError, RecordingError
from recording.dataset.features import load_features_config
from recording.dataset.writer import LeRobotWriter
from recording.recorder.episode_session import EpisodeSession, Phase
from recording.recorder.frame_assembly import FrameAssembler, StreamNames
from recording.recorder.recorder_setup import (
    RecorderConfig,
    SetupError,
    build_features,
    open_or_create,
    video_settings,
)
from recording.tasks_catalogue import load_tasks, resolve_task


@dataclass(frozen=True)
class RecorderNodeParams:
    """The recorder node's parameters: what it records (`RecorderConfig`) and what only the node uses."""

    dataset_dir: str = param("", "dataset root directory; created if missing, appended to if it exists")
    recording: RecorderConfig = nested(RecorderConfig)
    episode_time_limit: float = param(
        60.0, "s; the episode is saved automatically when reached (0 = none)", min=0.0
    )
    reset_time: float = param(
        5.0, "s after each save/discard during which starting is refused (scene reset)", min=0.0
    )
    status_rate: float = param(5.0, "Hz of ~/status", min=0.1, max=100.0)
    save_timeout: float = param(120.0, "s the save service waits for the episode to be written", min=1.0)

    def __post_init__(self) -> None:
        validate_fields(self)


PARAMETERS = RecorderNodeParams


@dataclass
class _SaveJob:
    reason: str
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    message: str = ""


class RecorderNode(Node):
    """Records episodes into one LeRobot v2.1 dataset (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("recorder", **kwargs)
        p: RecorderNodeParams = declare_config(self, PARAMETERS)
        self.p = p
        c = p.recording  # what is recorded (RecorderConfig)
        if not p.dataset_dir:
            raise SetupError(
                "parameter 'dataset_dir' is empty: set it to the dataset folder "
                "(e.g. -p dataset_dir:=/data/my_dataset)"
            )
        try:
            base, cfg = load_features_config(
                Path(c.features_file) if c.features_file else config_file("dataset_features.yaml")
            )
        except (ValueError, FileNotFoundError) as e:
            raise SetupError(f"features_file: {e}") from None
        self.features = build_features(base, list(c.cameras), c.image_width, c.image_height)
        video, overridden = video_settings(cfg, c.video_codec)
        self.catalogue = self._load_catalogue(c.tasks_file)
        robot_type = c.robot_type or cfg.get("robot_type")
        self.writer: LeRobotWriter
        self.writer, created = open_or_create(
            p.dataset_dir,
            self.features,
            c.fps,
            robot_type=robot_type,
            video=video,
            video_overridden=overridden,
        )
        self.dataset_dir = str(self.writer.root)
        self.state_names = self.features.state_names
        self.action_names = self.features.action_names

        self.session = EpisodeSession(p.episode_time_limit, p.reset_time)
        self.session.episode_index = self.writer.num_episodes
        self._frames = 0
        self._save_job: _SaveJob | None = None
        self._save_thread: threading.Thread | None = None
        self._warned: dict[str, float] = {}

        # ---- inputs: cheap callbacks that only store the newest message
        inputs = ReentrantCallbackGroup()
        self._camera_streams: dict[str, str] = {}  # camera name -> stream name (resolved topic)
        for cam in self.features.cameras:
            topic = c.camera_topic.replace("{name}", cam.name)
            sub = self.create_subscription(
                Image, topic, lambda m, c=cam.name: self._on_image(c, m), SENSOR, callback_group=inputs
            )
            self._camera_streams[cam.name] = sub.topic_name
        sub = self.create_subscription(
            JointState, c.joint_states_topic, self._on_joint_state, SENSOR, callback_group=inputs
        )
        self._state_stream = sub.topic_name
        self._action_stream: str | None = None
        if c.action_source == "trajectory":
            qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
            sub = self.create_subscription(
                JointTrajectory, c.action_topic, self._on_trajectory, qos, callback_group=inputs
            )
            self._action_stream = sub.topic_name
        self.frames = FrameAssembler(
            self.features,
            self.writer,
            StreamNames(self._camera_streams, self._state_stream, self._action_stream),
            camera_max_age=c.camera_max_age,
            state_max_age=c.state_max_age,
            action_max_age=c.action_max_age,
            resize_images=c.resize_images,
            warn=self._warn_throttled,
            units=c.units,
            # receive: stamps are arrival times on the monotonic clock; a message arriving while a
            # tick is taken is the newest data, not a clock problem
            arrival_clock=c.stamp_source == "receive",
        )
        self.sampler = self.frames.sampler
        self.tracker = self.frames.tracker

        # ---- the frame clock and the services each get their own group, so a blocking save
        # request never delays a frame and frames never delay the services
        self._frame_timer = self.create_timer(
            1.0 / c.fps, self._on_frame, callback_group=MutuallyExclusiveCallbackGroup()
        )
        services = MutuallyExclusiveCallbackGroup()
        self.create_service(StartEpisode, "~/start_episode", self._srv_start, callback_group=services)
        self.create_service(Trigger, "~/save_episode", self._srv_save, callback_group=services)
        self.create_service(Trigger, "~/discard_episode", self._srv_discard, callback_group=services)
        self.status_pub = self.create_publisher(RecorderStatus, "~/status", STATUS)
        self.create_timer(
            1.0 / p.status_rate, self.publish_status, callback_group=MutuallyExclusiveCallbackGroup()
        )

        self.get_logger().info(
            f"{'created' if created else 'appending to'} dataset {self.dataset_dir} "
            f"({self.writer.num_episodes} episode(s) saved, {self.writer.fps} fps, cameras "
            f"{[cam.name for cam in self.features.cameras]}, action from {c.action_source}"
            f"{' ' + c.action_topic if c.action_source == 'trajectory' else ''}); "
            f"streams: {list(self.sampler.streams)}"
        )

    # ------------------------------------------------------------------ helpers
    def _load_catalogue(self, path: str) -> dict:
        try:
            return load_tasks(Path(path) if path else config_file("tasks.yaml"))
        except (ValueError, FileNotFoundError) as e:
            if path:
                raise SetupError(f"tasks_file: {e}") from None
            self.get_logger().warning(f"no task catalogue ({e}); tasks are used as free text")
            return {}

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _stream_now(self) -> float:
        """Now on the clock stream ages are measured with: monotonic for arrival times, ROS for headers."""
        return self._now() if self.p.recording.stamp_source == "header" else time.monotonic()

    def _stamp(self, header: Any) -> float:
        if self.p.recording.stamp_source == "header":
            t = stamp_to_seconds(header.stamp)
            if t > 0:
                return t
        return self._stream_now()

    def _warn_throttled(self, key: str, text: str, period: float = 2.0) -> None:
        now = self._now()
        if now - self._warned.get(key, -1e18) >= period:
            self._warned[key] = now
            self.get_logger().warning(text)

    # ------------------------------------------------------------------ input callbacks
    def _on_image(self, camera: str, msg: Image) -> None:
        self.frames.on_image(camera, msg, self._stamp(msg.header))

    def _on_joint_state(self, msg: JointState) -> None:
        self.frames.on_joint_state(msg, self._stamp(msg.header))

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        self.frames.on_trajectory(msg, self._now(), self._stream_now())

    # ------------------------------------------------------------------ frame clock
    def _on_frame(self) -> None:
        now = self._now()
        with self.session.lock:
            self.session.tick(now)
            if self.session.phase != Phase.RECORDING:
                return
            if self.session.time_up(now):
                self.get_logger().info(
                    f"episode {self.session.episode_index}: time limit "
                    f"{self.session.time_limit:.1f} s reached, saving"
                )
                self._begin_save("time limit", now)
                return
            stream_now = self._stream_now()
            try:
                result = self.frames.tick(now, stream_now)
            except (RecordingError, ValueError) as e:
                self._fail(f"episode {self.session.episode_index} dropped, recording it failed: {e}", now)
                return
            if not result.added:
                self._warn_throttled(
                    "stale",
                    "dropping frames: stale stream(s) "
                    + ", ".join(f"{n} ({self._age_text(n, stream_now)})" for n in result.stale),
                )
                return
            self._frames = self.frames.frames
            backlog = self.writer.encoder_backlog
            if backlog > 2 * self.p.recording.fps:
                self._warn_throttled(
                    "backlog",
                    f"video encoding is {backlog} frames ({backlog / self.p.recording.fps:.1f} s) behind and buffering in "
                    "memory; use video_codec:=libx264, smaller images or fewer cameras",
                    period=10.0,
                )

    def _age_text(self, stream: str, now: float) -> str:
        age = self.sampler[stream].age(now)
        if age is None:
            return "never received"
        if age < 0:
            return (
                f"stamped {-age:.2f} s in the future: clock problem (the sender's clock is ahead of "
                "this node's, or the ROS clock jumped back; check time sync / use_sim_time)"
            )
        return f"age {age:.2f} s"

    def _fail(self, error: str, now: float) -> None:
        """The episode in progress cannot continue: drop it and report ERROR."""
        self.writer.discard_episode()
        self.frames.drop_pending()
        self.session.failed(now, error, self.writer.num_episodes)
        self.get_logger().error(error)

    # ------------------------------------------------------------------ episode control
    def _begin_save(self, reason: str, now: float) -> _SaveJob:
        """Hand the episode to the saver thread (caller holds the session lock, phase RECORDING)."""
        job = _SaveJob(reason)
        try:  # next_state: the last frame has no successor, its action holds its state
            self.frames.flush_pending()
        except (RecordingError, ValueError) as e:
            self._fail(f"episode {self.session.episode_index} dropped, recording it failed: {e}", now)
            job.message = self.session.error
            job.done.set()
            return job
        if self.writer.episode_frames == 0:
            summary = self.sampler.drop_summary()
            msg = (
                f"episode {self.session.episode_index} has no frames (dropped {self.sampler.frames_dropped}"
                f"{': ' + summary if summary else ''}); it was discarded"
            )
            self.writer.discard_episode()
            self.session.discarded(now)
            self.get_logger().warning(msg)
            job.message = msg
            job.done.set()
            return job
        self.session.begin_save(now)
        self._save_job = job
        self._save_thread = threading.Thread(
            target=self._save_worker, args=(job,), name="recorder-save", daemon=True
        )
        self._save_thread.start()
        return job

    def _save_worker(self, job: _SaveJob) -> None:
        index = self.session.episode_index
        dropped, summary = self.sampler.frames_dropped, self.sampler.drop_summary()
        try:
            info = self.writer.save_episode()
        except (RecordingError, OSError) as e:
            with self.session.lock:
                self.session.failed(self._now(), str(e), self.writer.num_episodes)
            job.message = f"saving episode {index} failed: {e}"
            self.get_logger().error(job.message)
        else:
            with self.session.lock:
                self.session.saved(self._now(), self.writer.num_episodes)
            job.ok = True
            job.message = (
                f"saved episode {info.episode_index} ({info.length} frames, {info.duration_s:.1f} s, "
                f"task {info.task!r}, {dropped} frame(s) dropped{': ' + summary if summary else ''}; "
                f"{job.reason}, took {info.save_seconds:.1f} s)"
            )
            if info.warning:  # saved, but the commit may not be on the device yet
                job.message += f"; WARNING: {info.warning}"
                self.get_logger().warning(job.message)
            else:
                self.get_logger().info(job.message)
        finally:
            job.done.set()

    def _srv_start(self, req: StartEpisode.Request, res: StartEpisode.Response) -> StartEpisode.Response:
        task_in = req.task.strip() or self.p.recording.default_task
        res.episode_index = self.writer.num_episodes
        if not task_in:
            res.success, res.message = False, "no task given and default_task is empty"
            return res
        task = resolve_task(self.catalogue, task_in)
        now = self._now()
        with self.session.lock:
            refusal = self.session.check_start(now)
            if refusal is not None:
                res.success, res.message = False, refusal.message
                self.get_logger().warning(f"start refused: {refusal.message}")
                return res
            try:
                index = self.writer.start_episode(task)
            except (RecordingError, ValueError, OSError) as e:
                res.success, res.message = False, f"cannot start an episode: {e}"
                self.session.set_error(res.message)
                self.get_logger().error(res.message)
                return res
            self.frames.start_episode()
            self._frames = 0
            self.session.start(now, task, index)
        res.success, res.episode_index = True, index
        res.message = f"recording episode {index}: {task!r}"
        self.get_logger().info(res.message)
        return res

    def _srv_save(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        now = self._now()
        with self.session.lock:
            refusal = self.session.check_stop("save")
            if refusal is not None:
                res.success, res.message = False, refusal.message
                return res
            job = self._begin_save("requested", now)
        if not job.done.wait(self.p.save_timeout):
            res.success, res.message = (
                False,
                (
                    f"episode still saving after {self.p.save_timeout:.0f} s "
                    "(save_timeout); watch ~/status for the outcome"
                ),
            )
            return res
        res.success, res.message = job.ok, job.message
        return res

    def _srv_discard(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        now = self._now()
        with self.session.lock:
            refusal = self.session.check_stop("discard")
            if refusal is not None:
                res.success, res.message = False, refusal.message
                return res
            index = self.session.episode_index
            self.writer.discard_episode()
            self.frames.drop_pending()
            self.session.discarded(now)
        res.success, res.message = True, f"discarded episode {index} ({self._frames} frames)"
        self.get_logger().info(res.message)
        return res

    # ------------------------------------------------------------------ status
    def make_status(self) -> RecorderStatus:
        now = self._now()
        msg = RecorderStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        with self.session.lock:
            self.session.tick(now)
            s = self.session
            msg.state = int(s.phase)
            msg.task = s.task
            msg.episode_index = s.episode_index
            msg.episode_duration = s.elapsed(now)
            msg.error = s.error
        msg.dataset_dir = self.dataset_dir
        msg.episodes_saved = self.writer.num_episodes
        msg.frames_recorded = self._frames
        msg.frames_dropped = self.sampler.frames_dropped
        ages = self.sampler.ages(self._stream_now())  # negative: stamped in the future (clock problem)
        msg.stream_names = list(ages)
        msg.stream_ages = [-1.0 if a is None else float(a) for a in ages.values()]
        msg.episode_time_limit = self.session.time_limit
        return msg

    def publish_status(self) -> None:
        self.status_pub.publish(self.make_status())

    def close(self) -> None:
        """Stop cleanly: finish a save in progress, drop an unsaved episode, release the dataset."""
        self._frame_timer.cancel()
        thread = self._save_thread
        if thread is not None and thread.is_alive():
            self.get_logger().info("waiting for the episode being saved...")
            thread.join(self.p.save_timeout)
        with self.session.lock:
            if self.writer.recording:
                self.get_logger().warning(
                    f"unsaved episode {self.session.episode_index} "
                    f"({self._frames} frames) discarded at shutdown"
                )
            self.writer.close()


def main(args: list[str] | None = None) -> int:
    return run_node(
        RecorderNode,
        "recorder",
        args=args,
        startup_errors=(SetupError, ParameterError, DatasetError, RecordingError, ValueError, OSError),
    )


if __name__ == "__main__":
    sys.exit(main())

"""`evo1_policy` node: synchronised cameras + joint states -> Evo-1 -> action chunks -> the arm.

Thin ROS wiring (docs/architecture.md §3.4, §6) around the pure parts: `control/observation.py` (what a usable
observation is), `model/inference_worker.py` (the model on its own thread), `control/chunk_scheduler.py`
(which action runs when, blending), `control/safety_filter.py` (limits, step and start caps).

Interfaces: subscribes the cameras `/cameras/<name>/image_raw` (remap to yours), `joint_states_topic`,
`driver_status_topic`, `~/task` (std_msgs/String); publishes `trajectory_topic`
(trajectory_msgs/JointTrajectory), `~/action_chunk` (evo1_msgs/ActionChunk), `~/status`
(evo1_msgs/PolicyStatus) and `/diagnostics`; services `~/start`, `~/stop` (std_srvs/Trigger),
`~/set_task` (evo1_msgs/SetTask). Nothing moves before `~/start` unless `autostart`.
"""

from __future__ import annotations

import array
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from evo1_msgs.msg import ActionChunk, PolicyStatus
from evo1_msgs.srv import SetTask
from evo1_ros.control.chunk_scheduler import ELAPSED, ChunkScheduler, SchedulerConfig
from evo1_ros.control.limits import GripperPulseMap, JointLimits
from evo1_ros.control.observation import (
    Frame,
    Observation,
    ObservationAssembler,
    ObservationConfig,
    ObservationError,
)
from evo1_ros.control.safety_filter import SafetyConfig, SafetyFilter
from evo1_ros.control.units import from_convention
from evo1_ros.model.checkpoints.loading import DTYPES, FORMATS, checkpoint_fps, load_policy, model_info
from evo1_ros.model.errors import CheckpointError
from evo1_ros.model.inference_worker import InferenceRequest, InferenceResult, InferenceWorker
from evo1_ros.parameters import nested, param, validate_fields
from evo1_ros.paths import config_file
from evo1_ros.ros.image import ImageConversionError, to_rgb8
from evo1_ros.ros.node_runner import run_node
from evo1_ros.ros.params import declare_config
from evo1_ros.ros.qos import COMMAND, SENSOR, STATUS
from evo1_ros.ros.stamps import seconds_to_stamp, split_nanoseconds, stamp_to_seconds
from evo1_ros.ros.sync import make_approximate_synchronizer
from recording.tasks_catalogue import load_tasks, resolve_task

JOINT_STATE_STREAM = "joint_states"
STATE_NAMES = {
    PolicyStatus.IDLE: "IDLE",
    PolicyStatus.RUNNING: "RUNNING",
    PolicyStatus.HOLDING: "HOLDING",
    PolicyStatus.FAULT: "FAULT",
}


@dataclass(frozen=True)
class Evo1PolicyParams:
    """The node's parameters: its own (model loading, topics, rates, files) + the library configs'.

    `ObservationConfig` (cameras, views, joints, ages, units), `SchedulerConfig` (chunk_threshold,
    blend) and `SafetyConfig` (caps) declare theirs on their fields. ``control_rate`` and
    ``n_action_steps`` are the node's: 0 means "the checkpoint's", resolved once the model is loaded.
    """

    checkpoint: str = param(
        "",
        "checkpoint folder: project (model.safetensors) or official Evo-1 "
        "(mp_rank_00_model_states.pt + config.json + norm_stats.json)",
    )
    checkpoint_format: str = param("auto", "checkpoint layout", choices=list(FORMATS))
    tokenizer_dir: str = param("", "tokenizer folder if not inside the checkpoint")
    device: str = param("auto", "auto (cuda if present) | cpu | cuda | cuda:N")
    dtype: str = param(
        "auto",
        "auto = bfloat16 on GPU, float32 on CPU",
        choices=["auto", *DTYPES],
    )
    seed: int = param(0, "noise seed for repeatable chunks; -1 = fresh noise", min=-1)
    num_steps: int = param(0, "flow-matching Euler steps; 0 = the checkpoint's", min=0, max=1000)
    warmup: bool = param(True, "run one inference before reporting ready")
    task: str = param("", "instruction or config/tasks.yaml id; also ~/task (String) and ~/set_task")
    tasks_file: str = param("", "task catalogue (id -> prompt); '' = config/tasks.yaml")
    observation: ObservationConfig = nested(ObservationConfig)
    joint_states_topic: str = param("/xarm/joint_states", "measured joints (sensor_msgs/JointState)")
    trajectory_topic: str = param("/xarm/joint_trajectory", "commands (trajectory_msgs/JointTrajectory)")
    driver_status_topic: str = param(
        "/xarm/driver_status", "the driver's DiagnosticStatus; '' = none (e.g. a JointTrajectoryController)"
    )
    slop: float = param(
        0.05, "approximate-time sync slop between cameras and joint states (s)", min=0.0, max=5.0
    )
    sync_queue_size: int = param(10, "sync queue per stream", min=1, max=1000)
    control_rate: float = param(
        0.0, "action steps per second; 0 = the checkpoint's training fps", min=0.0, max=1000.0
    )
    n_action_steps: int = param(0, "steps of a chunk used at most; 0 = its horizon", min=0)
    scheduler: SchedulerConfig = nested(SchedulerConfig)
    limits_file: str = param("", "joint limits YAML; '' = config/xarm6_limits.yaml")
    safety: SafetyConfig = nested(SafetyConfig)
    autostart: bool = param(False, "command the arm without waiting for ~/start")
    status_rate: float = param(5.0, "~/status and /diagnostics rate (Hz)", min=0.1, max=100.0)

    def __post_init__(self) -> None:
        validate_fields(self)


PARAMETERS = Evo1PolicyParams


def camera_topic(name: str) -> str:
    """The conventional topic of camera `name` (docs/architecture.md §3.1); deployments remap it."""
    return f"/cameras/{name}/image_raw"


def decode_frames(assembler: ObservationAssembler, images: Mapping[str, Image]) -> dict[str, Frame]:
    """Header checks, then RGB decoding, for the cameras the model sees; raises ObservationError."""
    frames: dict[str, Frame] = {}
    for camera, msg in images.items():
        if camera not in assembler.config.view_map:
            continue
        assembler.check_frame(camera, msg.height, msg.width, msg.encoding)
        try:
            rgb = to_rgb8(msg)
        except ImageConversionError as exc:
            raise ObservationError(camera, str(exc)) from None
        frames[camera] = Frame(rgb, msg.encoding, stamp_to_seconds(msg.header.stamp))
    return frames


def observation_from_messages(
    assembler: ObservationAssembler, images: Mapping[str, Image], joints: JointState, now: float
) -> Observation:
    """2..3 Image messages + a JointState -> model inputs (the node's whole per-observation work)."""
    frames = decode_frames(assembler, images)
    state = assembler.state_vector(joints.name, joints.position)
    return assembler.assemble(frames, state, stamp_to_seconds(joints.header.stamp), now)


def trajectory_message(
    joint_names: Sequence[str],
    times: np.ndarray,
    positions: np.ndarray,
    velocities: np.ndarray,
    now: float,
    pool: list[JointTrajectoryPoint] | None = None,
) -> JointTrajectory:
    """Absolute step times + filtered points -> JointTrajectory stamped `now` (time_from_start > 0).

    Fields are filled with array.array buffers (rclpy copies those without checking every element).
    `pool`: point objects reused from the previous message, grown as needed. Building 50 fresh
    points is most of this function's cost; reuse is safe for a caller that publishes each message
    (publish serialises it) before building the next one from the same thread.
    """
    msg = JointTrajectory()
    msg.header.stamp = seconds_to_stamp(now)
    msg.joint_names = list(joint_names)
    q = np.ascontiguousarray(positions, dtype=np.float64)
    v = np.ascontiguousarray(velocities, dtype=np.float64)
    offsets = np.rint((np.asarray(times, dtype=np.float64) - now) * 1e9).astype(np.int64)
    keep = np.flatnonzero(offsets > 0)
    if pool is None:
        pool = []
    while len(pool) < keep.size:
        pool.append(JointTrajectoryPoint())
    points = pool[: keep.size]
    for point, k in zip(points, keep, strict=True):
        point.positions = array.array("d", q[k].tobytes())
        point.velocities = array.array("d", v[k].tobytes())
        point.time_from_start.sec, point.time_from_start.nanosec = split_nanoseconds(offsets[k])
    msg.points = points
    return msg


class RateMeter:
    """Events per second over a sliding window (for status)."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._times: deque[float] = deque()

    def tick(self, t: float) -> None:
        self._times.append(t)

    def rate(self, now: float) -> float:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], 1e-9)
        return (len(self._times) - 1) / span


class Evo1PolicyNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("evo1_policy", **kwargs)
        p = self.p = declare_config(self, Evo1PolicyParams)
        self.joint_names = p.observation.joint_names
        self.units = p.observation.units
        self.gripper = GripperPulseMap.from_yaml(p.limits_file or None)
        limits = JointLimits.from_yaml(p.limits_file or None).subset(self.joint_names)
        self.assembler = ObservationAssembler(replace(p.observation, gripper=self.gripper))
        view_map = p.observation.view_map

        # Model first: a bad checkpoint ends start-up before anything is subscribed.
        policy = load_policy(
            p.checkpoint,
            fmt=p.checkpoint_format,
            tokenizer_dir=p.tokenizer_dir or None,
            device=p.device,
            dtype=p.dtype,
        )
        info = model_info(policy)
        n = len(self.joint_names)
        if info["state_dim"] != n or info["action_dim"] != n:
            raise ValueError(
                f"the checkpoint's state/action have {info['state_dim']}/{info['action_dim']} dims but "
                f"joint_names has {n} ({list(self.joint_names)}); set joint_names to the model's joints"
            )
        if len(view_map) > info["num_views"]:
            raise ValueError(f"view_map has {len(view_map)} views; the model takes {info['num_views']}")
        rate = p.control_rate or checkpoint_fps(p.checkpoint)
        if not rate:
            raise ValueError(
                "control_rate is 0 (= the training fps) but the checkpoint records no fps (training.json); "
                "set control_rate:=HZ to the frame rate the model was trained at"
            )
        self.control_rate = float(rate)
        self.horizon = int(info["horizon"])
        n_steps = p.n_action_steps or self.horizon
        if n_steps > self.horizon:
            raise ValueError(f"n_action_steps {n_steps} exceeds the model's horizon {self.horizon}")
        self.n_action_steps = n_steps
        self.horizon_s = n_steps / self.control_rate
        self.scheduler = ChunkScheduler(
            replace(p.scheduler, control_rate=self.control_rate, n_action_steps=n_steps)
        )
        self.safety = SafetyFilter(limits, self.joint_names, p.safety)

        self._lock = threading.RLock()
        self.tasks = load_tasks(Path(p.tasks_file) if p.tasks_file else config_file("tasks.yaml"))
        self.task = resolve_task(self.tasks, p.task.strip())
        self.state = PolicyStatus.IDLE
        self.reason = ""  # why HOLDING / FAULT
        self.last_fault = ""
        self._started = False
        self._request_id = 0  # results of older requests are dropped (stop/fault/reset happened)
        self._latest_set: tuple[dict[str, Image], JointState] | None = None
        self._stream_stamps: dict[str, float] = {}
        self._bad_stream: dict[str, str] = {}
        self._measured: np.ndarray | None = None
        self._measured_stamp: float | None = None
        self._driver_state = ""
        self._had_chunk = False
        self._reset_time = float("-inf")  # observations before the last reset are not used
        self._hold_stream = ""  # the stream a hold is waiting for
        self._point_pool: list[JointTrajectoryPoint] = []  # reused by the worker thread's messages
        self.chunks_computed = 0
        self.chunks_dropped = 0
        self.commands_sent = 0
        self.observations_dropped = 0
        self.steps_clamped = 0
        self._latencies: deque[float] = deque(maxlen=50)
        self._cmd_latency = 0.0
        self._chunk_rate = RateMeter()
        self._cmd_rate = RateMeter()

        self.worker = InferenceWorker(
            policy,
            self._on_result,
            self._on_error,
            clock=self._now,
            num_steps=p.num_steps or None,
            seed=p.seed,
        )
        if p.warmup:
            self._warm_up(policy)
        self.worker.start()

        ticks = MutuallyExclusiveCallbackGroup()
        inputs = MutuallyExclusiveCallbackGroup()
        services = ReentrantCallbackGroup()
        self.traj_pub = self.create_publisher(JointTrajectory, p.trajectory_topic, COMMAND)
        self.chunk_pub = self.create_publisher(ActionChunk, "~/action_chunk", STATUS)
        self.status_pub = self.create_publisher(PolicyStatus, "~/status", STATUS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", STATUS)
        self.cameras = p.observation.cameras
        topics = [(Image, camera_topic(c)) for c in self.cameras] + [(JointState, p.joint_states_topic)]
        self.sync = make_approximate_synchronizer(
            self, topics, p.sync_queue_size, p.slop, self._on_synced, qos_profile=SENSOR
        )
        for index, sub in enumerate(self.sync.subscribers):
            sub.registerCallback(self._on_stream, index)
        # Reliable + volatile: matches `ros2 topic pub` defaults and latched (transient-local) publishers.
        self.create_subscription(String, "~/task", self._on_task_topic, STATUS, callback_group=inputs)
        if p.driver_status_topic:
            self.create_subscription(
                DiagnosticStatus, p.driver_status_topic, self._on_driver_status, STATUS, callback_group=inputs
            )
        self.create_service(Trigger, "~/start", self._on_start, callback_group=services)
        self.create_service(Trigger, "~/stop", self._on_stop, callback_group=services)
        self.create_service(SetTask, "~/set_task", self._on_set_task, callback_group=services)
        self.create_timer(1.0 / self.control_rate, self._tick, callback_group=ticks)
        self.create_timer(
            1.0 / p.status_rate, self._publish_status, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self.get_logger().info(
            f"evo1_policy ready: {p.checkpoint} on {info['device']} ({info['dtype']}), horizon {self.horizon} "
            f"at {self.control_rate:g} Hz, n_action_steps {n_steps}, blend {p.scheduler.blend.value}, "
            f"units {self.units.value}, views {list(view_map)}, joints {list(self.joint_names)}"
        )
        if p.autostart:
            self._start()

    # -- helpers -------------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _warm_up(self, policy) -> None:
        """One inference on blank views, so the first real chunk is not slowed by lazy initialisation."""
        stats = policy.norm_stats
        mid = (stats.state_min + stats.state_max) / 2.0
        images = [np.zeros((448, 448, 3), np.uint8) if v else None for v in self.assembler.config.view_map]
        t0 = time.perf_counter()
        try:
            self.worker.predict(
                InferenceRequest(
                    images,
                    [bool(v) for v in self.assembler.config.view_map],
                    mid,
                    self.task or "warm up",
                    0.0,
                )
            )
        except Exception as exc:  # a model that cannot run must stop the start, not the first chunk
            raise CheckpointError(f"warm-up inference failed: {type(exc).__name__}: {exc}") from exc
        self.worker.reseed()
        self.get_logger().info(f"warm-up inference: {1e3 * (time.perf_counter() - t0):.0f} ms")

    def _hold_arm(self) -> None:
        """An empty trajectory: our driver and a JTC both stop and hold where the arm is.

        header.stamp stays zero ("now", as JTC reads it): a stamped empty trajectory has no duration,
        so a driver that drops trajectories which ended in the past would drop the stop itself.
        """
        msg = JointTrajectory()
        msg.joint_names = list(self.joint_names)
        self.traj_pub.publish(msg)

    def _reset_motion(self) -> None:
        """Forget the plan and any request in flight (lock held); older chunks are dropped on arrival."""
        self._request_id += 1
        if self.worker.cancel():
            self.scheduler.request_failed()
        self._reset_time = self._now()
        self.scheduler.reset(self._reset_time, hold=self._measured)
        self._had_chunk = False

    def _fault(self, reason: str) -> None:
        with self._lock:
            if self.state == PolicyStatus.FAULT and self.reason == reason:
                return
            was_moving = self._started
            self.state = PolicyStatus.FAULT
            self.reason = self.last_fault = reason
            self._started = False
            self._reset_motion()
        if was_moving:
            self._hold_arm()
        self.get_logger().error(f"FAULT, holding the arm: {reason}")

    def _hold(self, error: ObservationError) -> None:
        """An input is unusable: stop commanding, keep the arm where it is, resume once it is back."""
        with self._lock:
            if not self._started:
                return
            same = self.state == PolicyStatus.HOLDING and self._hold_stream == error.stream
            self.reason = f"holding: {error}"
            if same:
                return
            moving = self.state == PolicyStatus.RUNNING or self._had_chunk
            self.state = PolicyStatus.HOLDING
            self._hold_stream = error.stream
            self._reset_motion()
        if moving:
            self._hold_arm()
        self.get_logger().warning(f"holding the arm: {error}")

    def _start(self) -> tuple[bool, str]:
        with self._lock:
            if self._driver_state and self._driver_state != "READY":
                fix = "/xarm/resume" if self._driver_state == "STOPPED" else "/xarm/clear_error, /xarm/enable"
                return False, f"driver is {self._driver_state}; bring it back first ({fix})"
            if self._started:
                return True, "already running"
            if JOINT_STATE_STREAM in self._bad_stream:
                return False, f"cannot start: {self._bad_stream[JOINT_STATE_STREAM]}"
            if not self.task:
                return False, "no task set: give one with the task parameter, ~/task or ~/set_task"
            self._started = True
            self.state = PolicyStatus.HOLDING
            self.reason = "waiting for the first chunk"
            self._reset_motion()
        self.get_logger().info(f"started: task {self.task!r}")
        return True, f"started; task {self.task!r}"

    # -- inputs --------------------------------------------------------------------------------------
    def _on_stream(self, msg, index: int) -> None:
        """Every message of every synchronised stream: freshness, and header checks of camera frames."""
        if index == len(self.cameras):
            with self._lock:
                self._stream_stamps[JOINT_STATE_STREAM] = stamp_to_seconds(msg.header.stamp)
            try:
                state = self.assembler.state_vector(msg.name, msg.position)
            except ObservationError as exc:
                with self._lock:
                    self._bad_stream[JOINT_STATE_STREAM] = str(exc)
                    self.observations_dropped += 1
                return
            with self._lock:
                self._bad_stream.pop(JOINT_STATE_STREAM, None)
                self._measured = state
                self._measured_stamp = stamp_to_seconds(msg.header.stamp)
            return
        camera = self.cameras[index]
        try:
            self.assembler.check_frame(camera, msg.height, msg.width, msg.encoding)
        except ObservationError as exc:
            with self._lock:
                self._bad_stream[camera] = str(exc)
                self.observations_dropped += 1
            return
        with self._lock:
            self._bad_stream.pop(camera, None)
            self._stream_stamps[camera] = stamp_to_seconds(msg.header.stamp)

    def _on_synced(self, *msgs) -> None:
        images = dict(zip(self.cameras, msgs[:-1], strict=True))
        with self._lock:
            self._latest_set = (images, msgs[-1])

    def _on_driver_status(self, msg: DiagnosticStatus) -> None:
        """The driver's FAULT (or, while running, any state that does not execute commands) stops us."""
        values = {kv.key: kv.value for kv in msg.values}
        state = values.get("state", "")
        if state == "READY" and values.get("stop_latched") == "true":
            state = "STOPPED"  # the driver's own stop refuses trajectories until /xarm/resume
        with self._lock:
            self._driver_state = state
            running = self._started
        if state == "FAULT" or (running and state and state != "READY"):
            self._fault(f"driver {state}: {msg.message or state}")

    def _set_task(self, text: str) -> tuple[bool, str]:
        text = text.strip()
        if not text:
            return False, "task must be non-empty"
        with self._lock:
            self.task = resolve_task(self.tasks, text)
            text = self.task
        self.get_logger().info(f"task: {text!r} (from the next chunk)")
        return True, f"task {text!r}"

    def _on_task_topic(self, msg: String) -> None:
        self._set_task(msg.data)

    def _on_set_task(self, request: SetTask.Request, response: SetTask.Response) -> SetTask.Response:
        response.success, response.message = self._set_task(request.task)
        return response

    def _on_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self._start()
        return response

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self._started = False
            self.state = PolicyStatus.IDLE
            self.reason = ""
            self._reset_motion()
        self._hold_arm()
        self.get_logger().info("stopped: holding the arm")
        response.success, response.message = True, "stopped; the arm holds"
        return response

    # -- control loop --------------------------------------------------------------------------------
    def _check_streams(self, now: float) -> None:
        """Raise ObservationError for the first stream that cannot be used right now."""
        if self._bad_stream:
            stream, reason = next(iter(self._bad_stream.items()))
            raise ObservationError(stream, reason.split(": ", 1)[-1])
        self.assembler.check_ages(
            {c: self._stream_stamps.get(c) for c in self.cameras},
            self._stream_stamps.get(JOINT_STATE_STREAM),
            now,
        )

    def _tick(self) -> None:
        now = self._now()
        with self._lock:
            if not self._started:
                return
            try:
                self._check_streams(now)
            except ObservationError as exc:
                hold: ObservationError | None = exc
            else:
                hold = None
                self._hold_stream = ""
            age = self.scheduler.request_age(now)
            if not hold and age is not None and age > self.horizon_s:
                fault = (
                    f"inference slower than the horizon: no chunk {age:.2f} s after the request "
                    f"(horizon {self.horizon_s:.2f} s)"
                )
            else:
                fault = ""
        if hold:
            self._hold(hold)
            return
        if fault:
            self._fault(fault)
            return
        with self._lock:
            if not self._started:
                return
            if self.state == PolicyStatus.HOLDING and not self._had_chunk:
                self.reason = "waiting for the first chunk"
            if self.state == PolicyStatus.RUNNING and self.scheduler.remaining_steps(now) <= 0:
                self.state = PolicyStatus.HOLDING
                self.reason = "chunk exhausted, waiting for the next one (the arm holds its last point)"
            if self.scheduler.should_request(now):
                self._request(now)

    def _request(self, now: float) -> None:
        """Build model inputs from the newest synchronised set and hand them to the worker (lock held)."""
        if self._latest_set is None:
            return
        images, joints = self._latest_set
        self._latest_set = None  # each set feeds at most one chunk
        try:
            obs = observation_from_messages(self.assembler, images, joints, now)
        except ObservationError as exc:
            self.observations_dropped += 1
            self.get_logger().warning(f"observation not used: {exc}", throttle_duration_sec=2.0)
            return
        if obs.stamp < self._reset_time:
            return  # taken before the last start/stop/hold: its chunk would be refused; wait for a newer one
        self._request_id += 1
        self.worker.submit(
            InferenceRequest(obs.images, obs.image_mask, obs.state, self.task, obs.stamp, self._request_id)
        )
        self.scheduler.mark_requested(now)

    # -- worker callbacks (inference thread) ---------------------------------------------------------
    def _on_error(self, request: InferenceRequest, exc: BaseException) -> None:
        with self._lock:
            current = request.request_id == self._request_id and self._started
            self.scheduler.request_failed()
        if current:
            what = "returned NaN/inf" if isinstance(exc, FloatingPointError) else "raised"
            self._fault(f"model {what}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")

    def _on_result(self, result: InferenceResult) -> None:
        req = result.request
        now = self._now()
        with self._lock:
            if req.request_id != self._request_id or not self._started:
                self.scheduler.request_failed()  # answers the request in flight; its chunk is not used
                self.chunks_dropped += 1
                return
            self.chunks_computed += 1
            latency = result.finished - req.obs_stamp
            self._latencies.append(latency)
            self._chunk_rate.tick(now)
            try:
                actions = from_convention(result.actions, self.joint_names, self.units, self.gripper)
            except ValueError as exc:
                self.scheduler.request_failed()
                fault = f"model returned unusable actions: {exc}"
            else:
                fault = ""
        if fault:
            self._fault(fault)
            return
        self._publish_chunk(actions, req, latency)
        with self._lock:
            arrival = self.scheduler.add_chunk(actions, req.obs_stamp, now)
            if not arrival.accepted:
                self.chunks_dropped += 1
                if arrival.reason != ELAPSED:
                    return
                fault = (
                    f"inference slower than the horizon: {arrival.detail} (horizon {self.horizon_s:.2f} s)"
                )
            elif req.request_id != self._request_id or not self._started:
                return
        if fault:
            self._fault(fault)
            return
        with self._lock:
            times, positions = self.scheduler.plan(now)
            measured = self._measured
            if measured is None or len(times) == 0:
                return
            result_f = self.safety.filter(times, positions, measured)
            if result_f.fault:
                fault = f"safety filter: {result_f.fault}"
            else:
                self.steps_clamped += int(result_f.clamped)
                msg = trajectory_message(
                    self.joint_names, times, result_f.positions, result_f.velocities, now, self._point_pool
                )
                self.state = PolicyStatus.RUNNING
                self.reason = ""
                self._had_chunk = True
        if fault:
            self._fault(fault)
            return
        self.traj_pub.publish(msg)
        sent = self._now()
        with self._lock:
            self.commands_sent += 1
            self._cmd_rate.tick(sent)
            self._cmd_latency = sent - req.obs_stamp

    def _publish_chunk(self, actions: np.ndarray, req: InferenceRequest, latency: float) -> None:
        msg = ActionChunk()
        msg.header.stamp = seconds_to_stamp(req.obs_stamp)
        msg.joint_names = list(self.joint_names)
        msg.step_period = 1.0 / self.control_rate
        msg.horizon, msg.action_dim = int(actions.shape[0]), int(actions.shape[1])
        msg.actions = actions.astype(float).ravel().tolist()
        msg.task = req.task
        msg.inference_latency = float(latency)
        msg.chunk_index = self.chunks_computed
        self.chunk_pub.publish(msg)

    # -- status --------------------------------------------------------------------------------------
    def _publish_status(self) -> None:
        now = self._now()
        with self._lock:
            ages = [now - s for s in self._stream_stamps.values()]
            st = PolicyStatus()
            st.header.stamp = seconds_to_stamp(now)
            st.state = self.state
            st.task = self.task
            st.fault = self.reason
            st.inference_rate = self._chunk_rate.rate(now)
            st.command_rate = self._cmd_rate.rate(now)
            st.last_inference_latency = self._latencies[-1] if self._latencies else 0.0
            st.mean_inference_latency = float(np.mean(self._latencies)) if self._latencies else 0.0
            st.observation_age = max(ages) if len(ages) == len(self.cameras) + 1 else float("inf")
            st.chunks_computed = self.chunks_computed
            st.commands_sent = self.commands_sent
            st.observations_dropped = self.observations_dropped
            st.steps_clamped = self.steps_clamped
            extra = {
                "obs_to_command_latency_s": f"{self._cmd_latency:.4f}",
                "chunks_dropped": str(self.chunks_dropped),
                "last_fault": self.last_fault,
                "control_rate_hz": f"{self.control_rate:g}",
                "driver_state": self._driver_state or "unknown",
                "steps_dropped_for_latency": str(self.scheduler.counters.steps_dropped_elapsed),
                "steps_blended": str(self.scheduler.counters.steps_blended),
            }
        self.status_pub.publish(st)
        level = {
            PolicyStatus.IDLE: DiagnosticStatus.OK,
            PolicyStatus.RUNNING: DiagnosticStatus.OK,
            PolicyStatus.HOLDING: DiagnosticStatus.WARN,
            PolicyStatus.FAULT: DiagnosticStatus.ERROR,
        }[st.state]
        values = {
            "state": STATE_NAMES[st.state],
            "task": st.task,
            "inference_rate_hz": f"{st.inference_rate:.2f}",
            "command_rate_hz": f"{st.command_rate:.2f}",
            "last_inference_latency_s": f"{st.last_inference_latency:.4f}",
            "mean_inference_latency_s": f"{st.mean_inference_latency:.4f}",
            "observation_age_s": f"{st.observation_age:.3f}",
            "chunks_computed": str(st.chunks_computed),
            "commands_sent": str(st.commands_sent),
            "observations_dropped": str(st.observations_dropped),
            "steps_clamped": str(st.steps_clamped),
            **extra,
        }
        diag = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: Evo-1 policy",
            hardware_id="evo1",
            message=STATE_NAMES[st.state] + (f": {st.fault}" if st.fault else ""),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[diag])
        array.header.stamp = st.header.stamp
        self.diag_pub.publish(array)

    def close(self) -> None:
        """Stop the inference thread; the arm holds its last command (the driver's watchdog holds too)."""
        with self._lock:
            was_moving = self._started
            self._started = False
            self._reset_motion()
        if was_moving:
            self._hold_arm()
        self.worker.stop()

    def destroy_node(self) -> None:
        worker = getattr(self, "worker", None)  # absent when start-up failed before the model loaded
        if worker is not None:
            worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(Evo1PolicyNode, "evo1_policy", args=args)


if __name__ == "__main__":
    sys.exit(main())

"""Messages in, dataset rows out: the recorder's frame logic, shared by the live node and `evo1 bag to-lerobot`.

One implementation, two callers. The recorder node feeds it messages as they arrive and calls
:meth:`FrameAssembler.tick` from its frame timer; the bag converter feeds it the messages of a bag in
log order and calls :meth:`~FrameAssembler.tick` at the frame times of the bag's clock. Both pass the
same kinds of times, so both choose the same frames and write the same rows:

* ``stamp`` of a camera/state message: its header stamp (``stamp_source: header``) or its arrival
  time on the stream clock (``receive``);
* ``now``: the ROS time (frame tick, trajectory sampling, ``stamp_ns`` extra column);
* ``stream_now``: the time stream ages are measured at (the monotonic clock live with ``receive``,
  the ROS time with ``header``).

Messages are duck-typed (``rclpy`` messages and ``rosbags`` dataclasses have the same fields), so
this module needs neither rclpy nor torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evo1_ros.control.limits import GripperPulseMap
from evo1_ros.control.units import UnitConvention, parse_convention, to_convention
from evo1_ros.ros.stamps import seconds_to_nanoseconds, stamp_to_seconds
from recording.dataset.features import DatasetFeatures
from recording.dataset.writer import LeRobotWriter
from recording.recorder.command_tracker import CommandError, CommandTracker
from recording.recorder.recorder_setup import extra_values, joint_vector
from recording.recorder.stream_sampling import FrameSampler, LatestStream

WarnFn = Callable[[str, str], None]  # (throttle key, text)


@dataclass
class _Pending:
    """A frame waiting for its action (action_source=next_state)."""

    state: np.ndarray
    images: dict[str, np.ndarray]
    extras: dict[str, Any] | None


@dataclass
class TickResult:
    """What one frame tick did: a row written (``added``), or the streams that made it stale."""

    added: bool
    stale: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StreamNames:
    """Stream (resolved topic) names: one per camera, the joint states, the action (None = next_state)."""

    cameras: Mapping[str, str]
    state: str
    action: str | None


class FrameAssembler:
    """Newest message per stream -> one dataset row per frame tick, written with ``writer``.

    ``camera_max_age`` / ``state_max_age`` / ``action_max_age`` (s, 0 = no limit): an older stream
    makes the frame stale (dropped and counted). ``resize_images``: images of another size are
    resized to the stored size (else the frame is dropped). ``warn(key, text)`` reports problems
    (the caller throttles by key). ``arrival_clock``: stream stamps are arrival times on the
    monotonic clock (``stamp_source: receive``), so none can lie after the tick (see
    `recording.recorder.stream_sampling`).
    """

    def __init__(
        self,
        features: DatasetFeatures,
        writer: LeRobotWriter,
        streams: StreamNames,
        *,
        camera_max_age: float,
        state_max_age: float,
        action_max_age: float,
        resize_images: bool,
        warn: WarnFn,
        units: str = "rep103",
        arrival_clock: bool = False,
    ) -> None:
        self.features = features
        self.writer = writer
        self.names = streams
        self.resize_images = bool(resize_images)
        self._warn = warn
        self.state_names = features.state_names
        self.tracker = CommandTracker(features.action_names)
        arrival = {"arrival_clock": arrival_clock}
        latest = [LatestStream(streams.cameras[c.name], camera_max_age, **arrival) for c in features.cameras]
        latest.append(LatestStream(streams.state, state_max_age, **arrival))
        if streams.action is not None:
            latest.append(LatestStream(streams.action, action_max_age, **arrival))
        self.sampler = FrameSampler(latest)
        self._pending: _Pending | None = None
        self.last_state: np.ndarray | None = None
        self.frames = 0
        # Stored units: REP-103 (rad) by default; `official_xarm6` (deg + raw gripper pulses) for
        # datasets meant for the official Evo-1 trainer. Streams stay REP-103; rows convert on write.
        self.units = parse_convention(units)
        self._gripper = GripperPulseMap.from_yaml() if self.units is not UnitConvention.REP103 else None

    def _stored(self, values: np.ndarray, names: list[str]) -> np.ndarray:
        if self._gripper is None:
            return values
        return to_convention(values, names, self.units, self._gripper)

    # ------------------------------------------------------------------ inputs
    def on_image(self, camera: str, msg: Any, stamp: float) -> None:
        self.sampler[self.names.cameras[camera]].update(msg, stamp)

    def on_joint_state(self, msg: Any, stamp: float) -> None:
        vec, bad = joint_vector(list(msg.name), list(msg.position), self.state_names)
        if vec is None:
            self._warn(
                "state",
                f"{self.names.state}: no finite position for joint(s) {bad} "
                f"(have {list(msg.name)}); frames will be dropped",
            )
            return
        self.last_state = vec
        self.sampler[self.names.state].update(vec, stamp)

    def on_trajectory(self, msg: Any, now: float, stream_now: float) -> None:
        """An accepted JointTrajectory (header.stamp = its absolute start), received at ROS time ``now``."""
        if self.names.action is None:
            return
        last = self.last_state
        measured = dict(zip(self.state_names, last.tolist())) if last is not None else None
        try:
            self.tracker.add(
                list(msg.joint_names),
                stamp_to_seconds(msg.header.stamp),
                [stamp_to_seconds(pt.time_from_start) for pt in msg.points],
                [list(pt.positions) for pt in msg.points],
                velocities=[list(pt.velocities) for pt in msg.points],
                received_at=now,
                measured=measured,
            )
        except CommandError as e:
            self._warn("traj", f"{self.names.action}: ignoring a trajectory: {e}")
            return
        if self.tracker.has_all():
            self.sampler[self.names.action].update(True, stream_now)
        else:
            self._warn(
                "traj_missing",
                f"{self.names.action}: joint(s) {self.tracker.missing()} never commanded yet; "
                "frames will be dropped",
            )

    # ------------------------------------------------------------------ episode
    def start_episode(self) -> None:
        """Forget the previous episode's pending frame and drop counts (streams keep their values)."""
        self.sampler.reset_counts()
        self._pending = None
        self.frames = 0

    def drop_pending(self) -> None:
        self._pending = None

    def flush_pending(self) -> None:
        """Write the last next_state frame (it has no successor: its action holds its state)."""
        if self._pending is not None:
            pend, self._pending = self._pending, None
            self.writer.add_frame(pend.state, pend.state, pend.images, pend.extras)

    # ------------------------------------------------------------------ frame tick
    def tick(self, now: float, stream_now: float) -> TickResult:
        """Sample every stream at this frame tick and write the row (raises RecordingError/ValueError)."""
        sample = self.sampler.collect(stream_now)
        images: dict[str, np.ndarray] = {}
        if sample.ok:
            for cam in self.features.cameras:
                stream = self.names.cameras[cam.name]
                img = self._convert(cam.name, sample.values[stream], cam.width, cam.height)
                if img is None:
                    sample.stale.append(stream)
                else:
                    images[cam.name] = img
        action = None
        if sample.ok and self.names.action is not None:
            action = self.tracker.sample(now)
            if action is None:
                sample.stale.append(self.names.action)
        self.sampler.record(sample)
        if not sample.ok:
            return TickResult(False, list(sample.stale))
        state = self._stored(sample.values[self.names.state], self.state_names)
        if action is not None:
            action = self._stored(action, self.features.action_names)
        extras = extra_values(self.features, seconds_to_nanoseconds(now))
        if action is not None:
            self.writer.add_frame(state, action, images, extras)
        else:  # next_state: this frame's state is the previous frame's action
            if self._pending is not None:
                pend = self._pending
                self.writer.add_frame(pend.state, state, pend.images, pend.extras)
            self._pending = _Pending(state, images, extras)
        self.frames += 1
        return TickResult(True)

    def _convert(self, camera: str, msg: Any, width: int, height: int) -> np.ndarray | None:
        from evo1_ros.ros.image import ImageConversionError, to_rgb8  # sensor_msgs only when used

        try:
            img = to_rgb8(msg)
        except ImageConversionError as e:
            self._warn(f"img_{camera}", f"camera {camera}: {e}")
            return None
        if img.shape[:2] != (height, width):
            if not self.resize_images:
                self._warn(
                    f"size_{camera}",
                    f"camera {camera}: image is {img.shape[1]}x{img.shape[0]}, dataset stores "
                    f"{width}x{height}; set resize_images:=true or image_width/image_height",
                )
                return None
            import cv2  # only needed when the camera size differs from the stored one

            img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
        return img

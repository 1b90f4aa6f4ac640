"""Observation assembly for the policy: camera frames + joint state -> the model's inputs, or a reason not to.

The policy node hands this module decoded frames, their stamps and the newest joint reading; it gets
back either an :class:`Observation` (per-view images and mask, the state vector in the model's units,
the observation time) or an :class:`ObservationError` that names the stream at fault. Nothing here
guesses: a missing joint, a stale stream or a frame of the wrong size stops the observation, because
a policy conditioned on yesterday's image or a zero-filled joint would command the arm blindly.
No ROS, no torch: the same code runs in the node, the benchmark and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from evo1_ros.control.limits import ARM_JOINTS, GRIPPER_JOINT, GripperPulseMap
from evo1_ros.control.units import UnitConvention, parse_convention, to_convention
from evo1_ros.parameters import param, validate_fields


class ObservationError(ValueError):
    """One stream cannot be used right now; ``stream`` names it (camera name or ``joint_states``)."""

    def __init__(self, stream: str, reason: str) -> None:
        super().__init__(f"{stream}: {reason}")
        self.stream = stream
        self.reason = reason


def _names(values) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


@dataclass(frozen=True)
class ObservationConfig:
    """What a usable observation looks like; its fields are the policy node's observation parameters.

    ``view_map[k]`` is the camera feeding model view ``k`` ("" = no camera: the view is masked, as the
    official config does for absent views). ``image_height``/``image_width`` = 0 accept any size.
    Ages are seconds between a message's stamp and the time the observation is assembled (offline
    evaluation assembles each row at its own time: age 0).
    """

    cameras: tuple[str, ...] = param(
        ("base", "wrist"),
        "camera names; topics /cameras/<name>/image_raw (remap)",
        to_value=_names,
        to_param=list,
    )
    view_map: tuple[str, ...] = param(
        ("base", "wrist", ""),
        "camera per model view; '' = masked view",
        to_value=_names,
        to_param=list,
    )
    joint_names: tuple[str, ...] = param(
        (*ARM_JOINTS, GRIPPER_JOINT),
        "state/action joints, in the model's order",
        to_value=_names,
        to_param=list,
    )
    max_obs_age: float = param(
        0.5, "an image older than this is not used (s); the arm holds", min=0.001, max=60.0
    )
    max_state_age: float = param(
        0.2, "a joint state older than this is not used (s); the arm holds", min=0.001, max=60.0
    )
    encodings: tuple[str, ...] = param(
        ("rgb8", "bgr8"), "accepted image encodings", name="image_encodings", to_value=_names, to_param=list
    )
    image_height: int = param(0, "required image height; 0 = any (the model resizes)", min=0)
    image_width: int = param(0, "required image width; 0 = any", min=0)
    units: UnitConvention = param(
        UnitConvention.REP103,
        "state/action units of the checkpoint: rep103 (rad) | official_xarm6 (deg + raw gripper pulses)",
        choices=[u.value for u in UnitConvention],
        to_value=parse_convention,
        to_param=lambda units: parse_convention(units).value,
    )
    gripper: GripperPulseMap = field(default_factory=GripperPulseMap)

    def __post_init__(self) -> None:
        validate_fields(self)
        cameras = _names(self.cameras)
        views = _names(self.view_map)
        if not cameras:
            raise ValueError("cameras: at least one camera is needed")
        if len(set(cameras)) != len(cameras) or any(not c for c in cameras):
            raise ValueError(f"cameras must be distinct non-empty names, got {list(cameras)}")
        unknown = [v for v in views if v and v not in cameras]
        if unknown:
            raise ValueError(f"view_map names camera(s) {unknown} that are not in cameras {list(cameras)}")
        if not any(views):
            raise ValueError(f"view_map {list(views)} maps no camera to any view; at least one is needed")
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names must be distinct and non-empty, got {list(self.joint_names)}")
        object.__setattr__(self, "cameras", cameras)
        object.__setattr__(self, "view_map", views)
        object.__setattr__(self, "joint_names", _names(self.joint_names))
        object.__setattr__(self, "encodings", _names(self.encodings))
        object.__setattr__(self, "image_height", int(self.image_height))
        object.__setattr__(self, "image_width", int(self.image_width))
        object.__setattr__(self, "units", parse_convention(self.units))

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) a frame must have; 0 = any."""
        return self.image_height, self.image_width


@dataclass(frozen=True)
class Frame:
    """One decoded camera frame: RGB ``H x W x 3`` uint8, the encoding it arrived in, its stamp (s)."""

    image: np.ndarray
    encoding: str
    stamp: float


@dataclass(frozen=True)
class Observation:
    """Model inputs for one instant: per-view images (None where masked), mask, state, time."""

    images: list[np.ndarray | None]
    image_mask: list[bool]
    state: np.ndarray  # in the model's unit convention
    state_rep103: np.ndarray  # the same joints in REP-103 (what the safety filter compares with)
    stamp: float  # observation time (s): the newest stamp of the streams it was built from


def state_indices(config_names: Sequence[str], message_names: Sequence[str]) -> np.ndarray:
    """Positions of ``config_names`` in a JointState's ``name`` list; a missing joint is an error."""
    index = {str(n): i for i, n in enumerate(message_names)}
    missing = [n for n in config_names if n not in index]
    if missing:
        raise ObservationError(
            "joint_states",
            f"joint(s) {missing} are not in the joint state (it has {list(message_names)}); "
            "fix the joint_names parameter or the driver's joints",
        )
    return np.array([index[n] for n in config_names], dtype=int)


class ObservationAssembler:
    """Checks frames and joint readings against an :class:`ObservationConfig` and builds observations."""

    def __init__(self, config: ObservationConfig) -> None:
        self.config = config
        self._index_cache: tuple[tuple[str, ...], np.ndarray] | None = None

    def check_frame(self, camera: str, frame_height: int, frame_width: int, encoding: str) -> None:
        """Reject a frame by its header alone (before decoding): wrong encoding or size."""
        cfg = self.config
        if encoding not in cfg.encodings:
            raise ObservationError(
                camera, f"encoding {encoding!r} is not accepted (expected one of {list(cfg.encodings)})"
            )
        h, w = cfg.image_size
        if (h and frame_height != h) or (w and frame_width != w):
            raise ObservationError(
                camera, f"image is {frame_height}x{frame_width}, expected {h}x{w} (height x width)"
            )

    def state_vector(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """REP-103 state of the configured joints from a JointState's name/position lists."""
        key = tuple(names)
        if self._index_cache is None or self._index_cache[0] != key:
            self._index_cache = (key, state_indices(self.config.joint_names, names))
        idx = self._index_cache[1]
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape[0] != len(names):
            raise ObservationError("joint_states", f"{len(names)} names but {pos.shape[0]} positions")
        state = pos[idx]
        if not np.all(np.isfinite(state)):
            raise ObservationError("joint_states", "positions contain NaN or inf")
        return state

    def check_ages(
        self, frame_stamps: Mapping[str, float | None], state_stamp: float | None, now: float
    ) -> None:
        """Every camera used by a view and the joint state must be younger than their max age."""
        cfg = self.config
        for camera in cfg.cameras:
            if camera not in cfg.view_map:
                continue
            stamp = frame_stamps.get(camera)
            if stamp is None:
                raise ObservationError(camera, "no image received yet")
            age = now - stamp
            if age > cfg.max_obs_age:
                raise ObservationError(
                    camera, f"newest image is {age:.3f} s old (max_obs_age {cfg.max_obs_age} s)"
                )
        if state_stamp is None:
            raise ObservationError("joint_states", "no joint state received yet")
        age = now - state_stamp
        if age > cfg.max_state_age:
            raise ObservationError(
                "joint_states", f"newest joint state is {age:.3f} s old (max_state_age {cfg.max_state_age} s)"
            )

    def assemble(
        self, frames: Mapping[str, Frame], state: np.ndarray, state_stamp: float, now: float
    ) -> Observation:
        """Model inputs from decoded frames (by camera) and a REP-103 state; raises ObservationError."""
        cfg = self.config
        self.check_ages({c: f.stamp for c, f in frames.items()}, state_stamp, now)
        images: list[np.ndarray | None] = []
        mask: list[bool] = []
        for camera in cfg.view_map:
            if not camera:
                images.append(None)
                mask.append(False)
                continue
            frame = frames[camera]
            img = frame.image
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ObservationError(
                    camera, f"decoded image must be HxWx3 uint8, got {img.shape} {img.dtype}"
                )
            self.check_frame(camera, img.shape[0], img.shape[1], frame.encoding)
            images.append(img)
            mask.append(True)
        rep = np.asarray(state, dtype=np.float64)
        if rep.shape != (len(cfg.joint_names),) or not np.all(np.isfinite(rep)):
            raise ObservationError(
                "joint_states", f"state must be {len(cfg.joint_names)} finite values, got {rep}"
            )
        model_state = to_convention(rep, cfg.joint_names, cfg.units, cfg.gripper)
        stamp = max([f.stamp for c, f in frames.items() if c in cfg.view_map] + [state_stamp])
        return Observation(images, mask, model_state, rep, stamp)

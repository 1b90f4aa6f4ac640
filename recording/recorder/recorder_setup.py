"""Recorder set-up without ROS: its configuration, dataset features from config + parameters, open-or-create a dataset.

A recorder restarted on an existing dataset must append episodes of exactly the same shape (joint
names, cameras and their sizes, fps); any difference is refused here with a message saying what
differs and what to do, instead of producing a dataset LeRobot cannot load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evo1_ros.control.units import UnitConvention
from evo1_ros.parameters import param, validate_fields
from recording.dataset import layout
from recording.dataset.features import CameraSpec, DatasetFeatures
from recording.dataset.video_settings import VideoSettings
from recording.dataset.writer import LeRobotWriter

# Extra columns the recorder knows how to fill (key -> meaning); other extras in the config are refused.
STAMP_EXTRA = "stamp_ns"
SUPPORTED_EXTRAS = {STAMP_EXTRA: "ROS time of the frame tick in nanoseconds (int64, shape [1])"}


class SetupError(ValueError):
    """The recorder cannot start with this configuration (message says what to change)."""


@dataclass(frozen=True)
class RecorderConfig:
    """What the recorder records and how it turns messages into frames.

    Each field is one of the recorder node's parameters (declared once here, see
    evo1_ros/parameters.py); the node nests it beside the parameters only it uses. The same settings
    decide `evo1 bag to-lerobot`'s mapping (it reads them from config/recorder.yaml).
    """

    features_file: str = param(
        "",
        "features YAML (state/action names, camera sizes, video); '' = config/dataset_features.yaml of the package",
    )
    tasks_file: str = param("", "task catalogue YAML (id -> prompt); '' = config/tasks.yaml of the package")
    default_task: str = param(
        "pick_place_can", "task used when start_episode gets an empty task (a catalogue id or free text)"
    )
    fps: int = param(30, "frame rate of the frame clock and of the dataset", min=1, max=120)
    cameras: tuple[str, ...] = param(
        ("base", "wrist"), "camera names; each is read from camera_topic", to_value=tuple, to_param=list
    )
    camera_topic: str = param("/cameras/{name}/image_raw", "topic pattern of a camera ({name} = camera name)")
    image_width: int = param(0, "stored width of every camera (0 = size from the features file)", min=0)
    image_height: int = param(0, "stored height of every camera (0 = size from the features file)", min=0)
    resize_images: bool = param(
        True, "resize images of another size to the stored size (false: drop the frame)"
    )
    joint_states_topic: str = param("/xarm/joint_states", "measured joint states (observation.state)")
    action_source: str = param(
        "trajectory",
        "trajectory: commanded target sampled at frame time; "
        "next_state: the next frame's measured state (free-drive demos)",
        choices=["trajectory", "next_state"],
    )
    action_topic: str = param(
        "/xarm/accepted_trajectory",
        "JointTrajectory stream recorded as the action (action_source=trajectory): the driver's "
        "accepted_trajectory, so rejected commands are never recorded",
    )
    camera_max_age: float = param(
        0.2, "s; an older camera image makes the frame stale (0 = no limit)", min=0.0
    )
    state_max_age: float = param(0.1, "s; older joint states make the frame stale (0 = no limit)", min=0.0)
    action_max_age: float = param(
        0.0,
        "s; the trajectory command is held this long after the last one "
        "(0 = held until the next, like the arm does)",
        min=0.0,
    )
    stamp_source: str = param(
        "receive",
        "age of a message from its arrival time (monotonic clock) or its header stamp (ROS clock)",
        choices=["receive", "header"],
    )
    video_codec: str = param("", "libsvtav1 / libx264 / libx265; '' = the features file (or the dataset's)")
    robot_type: str = param("", "robot_type of a new dataset; '' = the features file's")
    units: str = param(
        "rep103",
        "stored state/action units: rep103 (rad) or official_xarm6 (deg + raw gripper pulses, "
        "for the official trainer)",
        choices=[u.value for u in UnitConvention],
    )

    def __post_init__(self) -> None:
        validate_fields(self)


def build_features(
    base: DatasetFeatures, cameras: Sequence[str], width: int = 0, height: int = 0
) -> DatasetFeatures:
    """Features to record: state/action/extras of ``base`` (the features file) and the ``cameras`` given.

    ``width``/``height`` > 0 set the stored size of every camera; otherwise each camera's size comes
    from the features file, which must then list it.
    """
    if (width > 0) != (height > 0):
        raise SetupError("set both image_width and image_height (or neither to use the features file sizes)")
    cams: list[CameraSpec] = []
    for name in cameras:
        if width > 0:
            cams.append(CameraSpec(str(name), int(height), int(width)))
            continue
        try:
            cams.append(base.camera(str(name)))
        except KeyError:
            raise SetupError(
                f"camera {name!r} is not in the features file (cameras there: {[c.name for c in base.cameras]}); "
                "add it there or set image_width/image_height"
            ) from None
    for ex in base.extras:
        if ex.key not in SUPPORTED_EXTRAS:
            raise SetupError(
                f"extra feature {ex.key!r} in the features file cannot be filled by the recorder "
                f"(supported: {sorted(SUPPORTED_EXTRAS)})"
            )
        if ex.key == STAMP_EXTRA and (ex.dtype != "int64" or tuple(ex.shape) != (1,)):
            raise SetupError(f"extra feature {STAMP_EXTRA!r} must be dtype int64, shape [1]")
    try:
        return DatasetFeatures(base.state_names, base.action_names, tuple(cams), tuple(base.extras))
    except ValueError as e:
        raise SetupError(str(e)) from None


def describe_difference(
    have: DatasetFeatures, have_fps: int, want: DatasetFeatures, want_fps: int
) -> str | None:
    """A readable description of how an existing dataset differs from what would be recorded, or None."""
    diffs = []
    if have_fps != want_fps:
        diffs.append(f"fps {have_fps} vs {want_fps}")
    if have.state_names != want.state_names:
        diffs.append(f"state names {list(have.state_names)} vs {list(want.state_names)}")
    if have.action_names != want.action_names:
        diffs.append(f"action names {list(have.action_names)} vs {list(want.action_names)}")
    hc = [(c.name, c.width, c.height) for c in have.cameras]
    wc = [(c.name, c.width, c.height) for c in want.cameras]
    if sorted(hc) != sorted(wc):
        diffs.append(f"cameras (name, width, height) {hc} vs {wc}")
    he = [(e.key, e.dtype, e.shape) for e in have.extras]
    we = [(e.key, e.dtype, tuple(e.shape)) for e in want.extras]
    if sorted(he) != sorted(we):
        diffs.append(f"extra columns {he} vs {we}")
    return "; ".join(diffs) or None


def open_or_create(
    root: Path | str,
    features: DatasetFeatures,
    fps: int,
    *,
    robot_type: str | None,
    video: VideoSettings,
    video_overridden: bool,
) -> tuple[LeRobotWriter, bool]:
    """Append to the dataset at ``root`` if it exists (after crash recovery), else create it.

    Returns (writer, created). ``video_overridden``: the codec was set explicitly, so appending to a
    dataset with another codec is an error; otherwise an existing dataset keeps its own codec.
    """
    root = Path(root).expanduser()
    if (root / layout.INFO_PATH).is_file():
        writer = LeRobotWriter.open(root, video=video if video_overridden else None)
        diff = describe_difference(writer.features, writer.fps, features, fps)
        if diff is not None:
            writer.close()
            raise SetupError(
                f"{root}: existing dataset differs from this recorder's configuration ({diff}); "
                "record into a new dataset_dir or change the parameters to match"
            )
        return writer, False
    return LeRobotWriter.create(root, fps, features, robot_type=robot_type, video=video), True


def joint_vector(
    msg_names: Sequence[str], msg_positions: Sequence[float], wanted: Sequence[str]
) -> tuple[np.ndarray | None, list[str]]:
    """Positions of ``wanted`` joints in that order from a JointState-like (names, positions).

    Returns (vector, []) or (None, missing-or-bad joint names).
    """
    index = {str(n): i for i, n in enumerate(msg_names)}
    out = np.empty(len(wanted))
    bad: list[str] = []
    for k, name in enumerate(wanted):
        i = index.get(name)
        if i is None or i >= len(msg_positions) or not np.isfinite(msg_positions[i]):
            bad.append(name)
        else:
            out[k] = msg_positions[i]
    return (None, bad) if bad else (out, [])


def video_settings(cfg: dict[str, Any], codec_override: str) -> tuple[VideoSettings, bool]:
    """Video settings from the features file's ``video:`` block, codec optionally overridden."""
    block = dict(cfg.get("video") or {})
    if codec_override:
        block["codec"] = codec_override
    try:
        settings = VideoSettings.from_config(block)
        settings.encoder()  # fail at start-up, not at the first episode
    except ValueError as e:
        raise SetupError(str(e)) from None
    return settings, bool(codec_override)


def extra_values(features: DatasetFeatures, frame_time_ns: int) -> dict[str, Any] | None:
    """Values of the supported extra columns for one frame (None when there are none)."""
    if not features.extras:
        return None
    return {ex.key: [frame_time_ns] for ex in features.extras if ex.key == STAMP_EXTRA}

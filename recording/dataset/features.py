"""Dataset features: what is recorded (state/action joint names, cameras, extra columns).

Turns the small config of ``config/dataset_features.yaml`` into the ``features`` block of a LeRobot
v2.1 ``info.json`` (docs/lerobot_v21.md §3) and back, so the writer, reader and validator share
one description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STATE_KEY = "observation.state"
ACTION_KEY = "action"
CAMERA_PREFIX = "observation.images."
IMAGE_NAMES = ["height", "width", "channels"]
NUMERIC_DTYPES = ("float32", "float64", "int64", "int32", "bool")

# Always present, in this order, after the user features (A.3).
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}

_CAMERA_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class CameraSpec:
    """One camera stream, stored as an mp4 per episode under ``observation.images.<name>``."""

    name: str
    height: int
    width: int

    @property
    def key(self) -> str:
        return CAMERA_PREFIX + self.name


@dataclass(frozen=True)
class ExtraSpec:
    """An additional numeric column (e.g. a real ROS stamp); ignored by policies, kept with stats."""

    key: str
    dtype: str
    shape: tuple[int, ...] = (1,)
    names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DatasetFeatures:
    """State/action vectors (names give the order), cameras and extra columns of a dataset."""

    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    cameras: tuple[CameraSpec, ...] = ()
    extras: tuple[ExtraSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _check_names("state", self.state_names)
        _check_names("action", self.action_names)
        seen: set[str] = set()
        for cam in self.cameras:
            if not _CAMERA_NAME.match(cam.name):
                raise ValueError(f"camera name {cam.name!r}: use letters, digits, '_', '-', '.' only")
            if cam.name in seen:
                raise ValueError(f"camera {cam.name!r} listed twice")
            seen.add(cam.name)
            if (
                not (isinstance(cam.height, int) and isinstance(cam.width, int))
                or cam.height < 2
                or cam.width < 2
                or cam.height % 2
                or cam.width % 2
            ):
                raise ValueError(
                    f"camera {cam.name!r}: size {cam.width}x{cam.height} must be even integers >= 2 "
                    "(yuv420p video needs even sizes)"
                )
        reserved = {STATE_KEY, ACTION_KEY, *DEFAULT_FEATURES}
        for ex in self.extras:
            if ex.key in reserved or ex.key.startswith(CAMERA_PREFIX):
                raise ValueError(f"extra feature {ex.key!r} clashes with a standard feature")
            if "/" in ex.key:
                raise ValueError(f"extra feature {ex.key!r}: '/' is not allowed in feature names")
            if "image" in ex.key:
                raise ValueError(f"extra feature {ex.key!r}: 'image' in a non-image key breaks LeRobot stats")
            if ex.dtype not in NUMERIC_DTYPES:
                raise ValueError(f"extra feature {ex.key!r}: dtype {ex.dtype!r} not in {NUMERIC_DTYPES}")
            if len(ex.shape) != 1 or ex.shape[0] < 1:
                raise ValueError(f"extra feature {ex.key!r}: shape must be [n] with n >= 1")

    @property
    def camera_keys(self) -> list[str]:
        return [c.key for c in self.cameras]

    def camera(self, name_or_key: str) -> CameraSpec:
        """Find a camera by short name or full feature key."""
        for c in self.cameras:
            if name_or_key in (c.name, c.key):
                return c
        raise KeyError(f"no camera {name_or_key!r} (have {[c.name for c in self.cameras]})")

    def to_info_features(self, video_info: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """The ``features`` block of info.json; ``video_info`` is the shared codec part of each ``info``."""
        feats: dict[str, dict[str, Any]] = {
            STATE_KEY: {
                "dtype": "float32",
                "shape": [len(self.state_names)],
                "names": list(self.state_names),
            },
            ACTION_KEY: {
                "dtype": "float32",
                "shape": [len(self.action_names)],
                "names": list(self.action_names),
            },
        }
        for cam in self.cameras:
            entry: dict[str, Any] = {
                "dtype": "video",
                "shape": [cam.height, cam.width, 3],
                "names": list(IMAGE_NAMES),
            }
            if video_info is not None:
                entry["info"] = {"video.height": cam.height, "video.width": cam.width, **video_info}
            feats[cam.key] = entry
        for ex in self.extras:
            feats[ex.key] = {
                "dtype": ex.dtype,
                "shape": list(ex.shape),
                "names": list(ex.names) if ex.names is not None else None,
            }
        for key, spec in DEFAULT_FEATURES.items():
            feats[key] = {"dtype": spec["dtype"], "shape": list(spec["shape"]), "names": spec["names"]}
        return feats

    @classmethod
    def from_info_features(cls, feats: dict[str, Any]) -> DatasetFeatures:
        """Rebuild from an info.json ``features`` block (raises ValueError naming the bad feature)."""
        try:
            state = _names_of(feats[STATE_KEY], STATE_KEY)
            action = _names_of(feats[ACTION_KEY], ACTION_KEY)
        except KeyError as e:
            raise ValueError(f"features: missing {e.args[0]!r}") from None
        cams: list[CameraSpec] = []
        extras: list[ExtraSpec] = []
        for key, spec in feats.items():
            if key in (STATE_KEY, ACTION_KEY) or key in DEFAULT_FEATURES:
                continue
            if spec.get("dtype") == "video":
                if not key.startswith(CAMERA_PREFIX):
                    raise ValueError(f"features: video feature {key!r} must start with {CAMERA_PREFIX!r}")
                shape = spec.get("shape")
                if not (isinstance(shape, list) and len(shape) == 3 and shape[2] == 3):
                    raise ValueError(f"features: {key!r} shape {shape!r} is not [height, width, 3]")
                cams.append(CameraSpec(key[len(CAMERA_PREFIX) :], int(shape[0]), int(shape[1])))
            else:
                names = spec.get("names")
                extras.append(
                    ExtraSpec(
                        key,
                        str(spec.get("dtype")),
                        tuple(int(s) for s in spec.get("shape", [])),
                        tuple(names) if isinstance(names, list) else None,
                    )
                )
        return cls(tuple(state), tuple(action), tuple(cams), tuple(extras))

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> DatasetFeatures:
        """Build from the mapping in ``config/dataset_features.yaml`` (see that file for the keys)."""
        try:
            state = cfg["state"]["names"]
            action = cfg["action"]["names"]
        except (KeyError, TypeError):
            raise ValueError("features config needs state.names and action.names lists") from None
        cams = []
        for name, size in (cfg.get("cameras") or {}).items():
            try:
                cams.append(CameraSpec(str(name), int(size["height"]), int(size["width"])))
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"camera {name!r}: needs integer height and width") from None
        extras = []
        for key, spec in (cfg.get("extra") or {}).items():
            try:
                shape = tuple(int(s) for s in spec.get("shape", [1]))
                names = spec.get("names")
                extras.append(
                    ExtraSpec(
                        str(key), str(spec["dtype"]), shape, tuple(names) if names is not None else None
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                raise ValueError(f"extra feature {key!r}: needs dtype and optional shape [n]") from None
        return cls(tuple(str(s) for s in state), tuple(str(a) for a in action), tuple(cams), tuple(extras))


def load_features_config(path: Path) -> tuple[DatasetFeatures, dict[str, Any]]:
    """Read a features YAML; returns the features and the whole mapping (fps, robot_type, video...)."""
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing") from None
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot parse YAML ({e})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    try:
        return DatasetFeatures.from_config(cfg), cfg
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _check_names(what: str, names: tuple[str, ...]) -> None:
    if not names:
        raise ValueError(f"{what}: needs at least one name")
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: duplicate names in {list(names)}")


def _names_of(spec: dict[str, Any], key: str) -> list[str]:
    names = spec.get("names")
    if isinstance(names, dict):  # older datasets: {"motors": [...]}
        names = next(iter(names.values()), None)
    shape = spec.get("shape")
    if (
        not isinstance(names, list)
        or not isinstance(shape, list)
        or len(shape) != 1
        or shape[0] != len(names)
    ):
        raise ValueError(f"features: {key!r} needs shape [n] and a list of n names")
    return [str(n) for n in names]

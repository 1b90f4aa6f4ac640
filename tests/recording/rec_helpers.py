"""Helpers for the recording tests: small synthetic datasets written through the real writer."""

from __future__ import annotations

from pathlib import Path

from recording.dataset.features import CameraSpec, DatasetFeatures
from recording.dataset.synth import write_synthetic_dataset
from recording.dataset.video_settings import VideoSettings

JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "drive_joint")
FPS = 30


def small_features(cameras: int = 2) -> DatasetFeatures:
    """xArm6 state/action with small (64x48) cameras."""
    cams = tuple(CameraSpec(n, 48, 64) for n in ("base", "wrist")[:cameras])
    return DatasetFeatures(JOINTS, JOINTS, cams)


def make_dataset(
    root: Path, episodes: int = 2, frames: int = 12, codec: str = "libx264", tasks: list[str] | None = None
) -> Path:
    write_synthetic_dataset(
        root,
        episodes=episodes,
        frames=frames,
        fps=FPS,
        features=small_features(),
        video=VideoSettings(codec=codec),
        tasks=tasks or ["pick up the can", "stack the can"],
    )
    return root

"""Synthetic episodes written through the real writer (``evo1 dataset synth``, tests, benchmarks).

The pictures are smooth (gradients and a moving square) so a lossy codec reproduces them closely,
and the joint trajectories are sinusoids with the action leading the state by one frame, like a
commanded position ahead of the measured one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from recording.dataset.features import DatasetFeatures
from recording.dataset.video_settings import VideoSettings
from recording.dataset.writer import EpisodeInfo, LeRobotWriter


def synthetic_image(camera: int, episode: int, frame: int, height: int, width: int) -> np.ndarray:
    """A deterministic HxWx3 uint8 RGB picture for (camera, episode, frame)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = 0.15 * frame + 0.9 * episode + 1.7 * camera
    img = np.empty((height, width, 3), dtype=np.float32)
    img[..., 0] = 128 + 80 * np.sin(xx / max(width, 1) * 2 * np.pi + phase)
    img[..., 1] = 128 + 80 * np.cos(yy / max(height, 1) * 2 * np.pi - phase)
    img[..., 2] = 60 + 120 * (xx + yy) / max(width + height, 1)
    size = max(4, min(height, width) // 4)
    cx = int((width - size) * (0.5 + 0.45 * np.sin(0.2 * frame + camera)))
    cy = int((height - size) * (0.5 + 0.45 * np.cos(0.13 * frame + episode)))
    img[cy : cy + size, cx : cx + size] = (230, 200 - 30 * camera % 200, 40)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_joints(episode: int, frame: int, n: int, fps: int) -> np.ndarray:
    """A smooth joint vector (rad) for frame ``frame`` of ``episode``; the last entry stays in 0..0.85."""
    t = frame / fps
    j = np.arange(n, dtype=np.float64)
    q = 0.5 * np.sin(0.8 * t + 0.6 * j + 0.3 * episode)
    q[-1] = 0.425 + 0.425 * np.sin(0.5 * t + episode)
    return q.astype(np.float32)


def write_synthetic_dataset(
    root: Path | str,
    *,
    episodes: int,
    frames: int,
    fps: int,
    features: DatasetFeatures,
    video: VideoSettings | None = None,
    robot_type: str | None = "xarm6",
    tasks: list[str] | None = None,
    append: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[EpisodeInfo]:
    """Create (or with ``append`` extend) a dataset with ``episodes`` x ``frames`` synthetic frames."""
    if episodes < 1 or frames < 1:
        raise ValueError(f"need at least 1 episode and 1 frame, got episodes={episodes} frames={frames}")
    tasks = tasks or ["pick up the can and place it on the plate"]
    if append and (Path(root) / "meta" / "info.json").is_file():
        writer = LeRobotWriter.open(root, video=video)
    else:
        writer = LeRobotWriter.create(root, fps, features, robot_type=robot_type, video=video)
    saved = []
    with writer:
        features = writer.features  # appending: the dataset's own cameras/extras, not the config's
        n_s, n_a = len(features.state_names), len(features.action_names)
        first = writer.num_episodes
        for e in range(first, first + episodes):
            writer.start_episode(tasks[e % len(tasks)])
            for k in range(frames):
                images = {
                    cam.name: synthetic_image(ci, e, k, cam.height, cam.width)
                    for ci, cam in enumerate(features.cameras)
                }
                extras = {ex.key: np.full(ex.shape, k, dtype=ex.dtype) for ex in features.extras}
                writer.add_frame(
                    synthetic_joints(e, k, n_s, writer.fps),
                    synthetic_joints(e, k + 1, n_a, writer.fps),
                    images,
                    extras,
                )
            saved.append(writer.save_episode())
            if progress is not None:
                progress(e - first + 1, episodes)
    return saved

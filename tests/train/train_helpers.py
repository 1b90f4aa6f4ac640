"""Helpers for the training tests: small datasets written through the real writer, tiny run configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evo1_ros.train.config import TrainConfig, from_dict
from recording.dataset.features import CameraSpec, DatasetFeatures
from recording.dataset.synth import write_synthetic_dataset
from recording.dataset.video_settings import VideoSettings
from recording.dataset.writer import LeRobotWriter

JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "drive_joint")
FPS = 10
TASK = "pick up the can"
# A tiny Evo-1 with 56-px views (4 image tokens each), a 96-token prompt and 4 x 8 action chunks: the
# head's 64-d pooled vector can carry such a noisy chunk (50 x 24 could not), and 100 CPU steps take seconds.
TINY_MODEL = {
    "preset": "tiny",
    "image_size": 56,
    "max_text_length": 96,
    "horizon": 4,
    "per_action_dim": 8,
    "state_dim": 8,
}
F_JOINTS = ("j1", "j2", "j3")


def synth_dataset(root: Path, episodes: int = 3, frames: int = 16) -> Path:
    """What `evo1 dataset synth` writes (same function), with one small camera."""
    write_synthetic_dataset(
        root,
        episodes=episodes,
        frames=frames,
        fps=FPS,
        features=DatasetFeatures(JOINTS, JOINTS, (CameraSpec("base", 24, 32),)),
        video=VideoSettings(codec="libx264"),
        tasks=[TASK],
    )
    return root


def f_of_state(state: np.ndarray) -> np.ndarray:
    """The action of the `action = f(state)` dataset."""
    return (0.2 - 0.8 * state).astype(np.float32)


def state_trajectory(episode: int, frames: int) -> np.ndarray:
    """Smooth joint paths with per-episode random amplitude, frequency and phase (held-out ones are new)."""
    rng = np.random.default_rng(1000 + episode)
    amp = rng.uniform(0.3, 1.0, len(F_JOINTS))
    freq = rng.uniform(0.05, 0.15, len(F_JOINTS))
    phase = rng.uniform(0, 2 * np.pi, len(F_JOINTS))
    t = np.arange(frames)[:, None] / FPS
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def f_state_dataset(root: Path, episodes: int = 9, frames: int = 24, action_dim: int = 3) -> Path:
    """A dataset whose action is f(state) at every frame (3 joints), written with the real writer API.

    `evo1 dataset synth` cannot make one: its action is the state one frame later (a smooth path, but not
    a function of the state alone), so this goes through `LeRobotWriter` directly.
    """
    names = F_JOINTS if action_dim == len(F_JOINTS) else tuple(f"a{i}" for i in range(action_dim))
    features = DatasetFeatures(F_JOINTS, names, (CameraSpec("base", 24, 32),))
    with LeRobotWriter.create(root, FPS, features, video=VideoSettings(codec="libx264")) as w:
        for e in range(episodes):
            w.start_episode(TASK)
            states = state_trajectory(e, frames)
            for k in range(frames):
                img = np.full((24, 32, 3), 60 + 20 * (e % 3), np.uint8)
                action = np.resize(f_of_state(states[k]), action_dim)
                w.add_frame(states[k], action, {"base": img})
            w.save_episode()
    return root


def tiny_config(datasets: list[Any], out: Path, **overrides: Any) -> TrainConfig:
    """A fast CPU config (tiny model, head lr 1e-3, no validation of videos)."""
    data: dict[str, Any] = {
        "datasets": datasets,
        "out": str(out),
        "model": dict(TINY_MODEL),
        "steps": 20,
        "batch_size": 8,
        "lr": 1e-3,
        "warmup_steps": 5,
        "num_workers": 0,
        "log_interval": 1,
        "progress": False,
        "tensorboard": False,
        "validate_datasets": "off",
        "device": "cpu",
        "ckpt_interval": 1000,
        "threads": 1,
    }
    data.update(overrides)
    cfg = from_dict(data)
    cfg.validate()
    return cfg

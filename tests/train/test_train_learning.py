"""Training actually learns: the loss halves, an action = f(state) map transfers to held-out episodes, and
the saved folder reloads (with its stats and fps) into a policy that predicts exactly like the trained model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from evo1_ros.model import Evo1Policy, NormStats, checkpoint_fps
from evo1_ros.train.checkpoint_io import read_training_info
from evo1_ros.train.logs import read_log
from evo1_ros.train.trainer import Trainer
from fixtures.training import FPS, f_of_state, tiny_config
from recording.dataset.reader import LeRobotReader

STEPS = 300


@pytest.fixture(scope="module")
def trained(fstate_ds: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("learn") / "run"
    cfg = tiny_config(
        [str(fstate_ds)],
        out,
        steps=STEPS,
        lr=2e-3,
        warmup_steps=10,
        batch_size=16,
        augmentation=False,
        frame_cache=True,
        val_episodes=1,
        val_interval=STEPS,
    )
    trainer = Trainer(cfg, log=lambda _: None)
    result = trainer.run()
    return trainer, result, out


def _held_out(ds: Path):
    reader = LeRobotReader(ds)
    start, stop = reader.episode_bounds(reader.num_episodes - 1)
    frames = [reader.frame(i) for i in range(start, stop)]
    return reader, start, frames


def test_loss_falls_below_half_of_its_start(trained) -> None:
    _, result, out = trained
    rows = read_log(out / "train_log.csv")
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) == STEPS
    start, end = np.mean(losses[:5]), np.mean(losses[-20:])
    assert end < 0.5 * start, f"loss went from {start:.3f} to {end:.3f}"
    assert result.steps == STEPS and np.isfinite(result.final_loss)
    assert rows[-1]["val_loss"] != ""  # validation ran on the held-out episode
    assert (out / "best" / "model.safetensors").is_file()
    png = cv2.imread(str(out / "loss.png"))
    assert png is not None and png.shape[0] > 100


def test_action_as_function_of_state_beats_the_mean_on_held_out_frames(trained, fstate_ds: Path) -> None:
    _, _, out = trained
    policy = Evo1Policy.from_pretrained(out)
    reader, start, frames = _held_out(fstate_ds)
    cam = reader.camera_keys[0]
    pred = policy.predict_batch(
        [[f.images[cam]] for f in frames],
        [[True]] * len(frames),
        np.stack([f.state for f in frames]),
        [f.task for f in frames],
        generator=0,
    )
    truth = np.stack([f.action for f in frames])
    np.testing.assert_allclose(truth, f_of_state(np.stack([f.state for f in frames])), atol=1e-6)
    train_mean = reader.column("action")[:start].mean(axis=0)
    model_mse = float(((pred[:, 0] - truth) ** 2).mean())
    mean_mse = float(((train_mean - truth) ** 2).mean())
    assert model_mse < 0.5 * mean_mse, f"model {model_mse:.4f} vs mean predictor {mean_mse:.4f}"


def test_checkpoint_reloads_with_stats_and_fps_and_predicts_identically(trained, fstate_ds: Path) -> None:
    trainer, _, out = trained
    reader, _, frames = _held_out(fstate_ds)
    stats = trainer.plan.stats["xarm6"]
    live = Evo1Policy(trainer.model, trainer.tokenizer, stats)
    loaded = Evo1Policy.from_pretrained(out)
    # stats: min of the per-episode mins / max of the maxes over all episodes, as the official trainer
    all_states = reader.column("observation.state")
    np.testing.assert_allclose(loaded.norm_stats.state_min, all_states.min(axis=0), atol=1e-6)
    np.testing.assert_allclose(loaded.norm_stats.state_max, all_states.max(axis=0), atol=1e-6)
    assert isinstance(loaded.norm_stats, NormStats)
    assert checkpoint_fps(out) == FPS
    info = read_training_info(out)
    assert info is not None and info["stage"] == "stage1" and info["step"] == STEPS
    f = frames[3]
    args = ([f.images[reader.camera_keys[0]]], [True], f.state, f.task)
    a = live.predict(*args, generator=5)
    b = loaded.predict(*args, generator=5)
    assert np.array_equal(a, b)

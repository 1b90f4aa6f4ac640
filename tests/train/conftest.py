"""Datasets for the training tests, written once per session through the real writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.training import f_state_dataset, synth_dataset


@pytest.fixture(scope="session")
def synth_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 episodes x 16 frames of `evo1 dataset synth` data (7 joints, one 32x24 camera)."""
    return synth_dataset(tmp_path_factory.mktemp("synth") / "ds")


@pytest.fixture(scope="session")
def fstate_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """9 episodes whose action is f(state); the last one is held out by `val_episodes=1`."""
    return f_state_dataset(tmp_path_factory.mktemp("fstate") / "ds")

"""Shared fixtures for the Evo-1 model tests: the reference fixture, a tiny random model, a tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evo1_ros.model import Evo1Model, Evo1Policy, NormStats
from evo1_ros.model.processing.tokenizer import load_tokenizer
from fixtures.models import REFERENCE_DIR, make_tiny_model


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    assert (REFERENCE_DIR / "mp_rank_00_model_states.pt").is_file(), "tests/data/evo1_reference_A is missing"
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def reference_inputs(reference_dir: Path) -> dict[str, np.ndarray]:
    return dict(np.load(reference_dir / "inputs.npz"))


@pytest.fixture(scope="session")
def reference_outputs(reference_dir: Path) -> dict[str, np.ndarray]:
    return dict(np.load(reference_dir / "outputs.npz"))


@pytest.fixture(scope="session")
def tokenizer(reference_dir: Path):
    """The fixture's tiny slow Qwen2 tokenizer (311 tokens, <IMG_CONTEXT> = 310)."""
    return load_tokenizer(reference_dir / "tokenizer")


@pytest.fixture(scope="session")
def norm_stats(reference_dir: Path) -> NormStats:
    return NormStats.load(reference_dir / "norm_stats.json")


@pytest.fixture(scope="session")
def tiny_model() -> Evo1Model:
    return make_tiny_model()


@pytest.fixture(scope="session")
def tiny_policy(tiny_model: Evo1Model, tokenizer, norm_stats: NormStats) -> Evo1Policy:
    return Evo1Policy(tiny_model, tokenizer, norm_stats)

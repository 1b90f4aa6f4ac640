"""Shared fixtures: small synthetic datasets written through the real writer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fixtures.datasets import make_dataset


@pytest.fixture(scope="session")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 2-episode dataset (H.264), written once; copy it before changing anything."""
    return make_dataset(tmp_path_factory.mktemp("golden") / "ds")


@pytest.fixture
def dataset_copy(golden: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(golden, dst)
    return dst

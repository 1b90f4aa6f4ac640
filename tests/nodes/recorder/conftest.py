"""Fixtures shared by the recorder node tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from evo1_ros.nodes.recorder import RecorderNode
from fixtures.datasets import write_features
from fixtures.recorder import as_overrides, recorder_params


@pytest.fixture
def make_recorder(ros, tmp_path: Path):
    """Build a RecorderNode in the test's context; closed (dataset lock released) at teardown."""
    made: list[RecorderNode] = []
    features = write_features(tmp_path / "features.yaml")

    def _make(**overrides):
        params = recorder_params(tmp_path / "ds", features, **overrides)
        node = RecorderNode(context=ros.context, parameter_overrides=as_overrides(params))
        made.append(node)
        return ros.add(node)

    yield _make
    for node in made:
        node.close()

"""Fixtures for the policy tests: tiny Evo-1 checkpoints and an in-process evo1_policy node factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from policy_helpers import make_checkpoint
from rclpy.parameter import Parameter


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """Tiny Evo-1 in project format, REP-103 units, all seven joints, trained "at" 10 fps."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "rad")


@pytest.fixture
def make_policy_node(ros):
    """Build an evo1_policy node in the test's ROS context: make_policy_node(checkpoint, **params)."""

    def _make(checkpoint_dir: Path, **params):
        from evo1_ros.nodes.evo1_policy import Evo1PolicyNode

        overrides = {"checkpoint": str(checkpoint_dir), "status_rate": 20.0, **params}
        node = Evo1PolicyNode(
            context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
        )
        ros.add(node)
        return node

    return _make

"""The layer rule of docs/architecture.md §2, checked on the import statements of every source file.

model/ has no ROS; control/, sim/ and recording/ have no torch; only node files (`*_node.py`)
in recording/ and the modules under nodes/ and ros/ may import rclpy in those packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


RULES = [
    # (directory, forbidden import roots, file-name suffix exempt from the rclpy ban)
    ("evo1_ros/model", {"rclpy", "evo1_msgs"}, None),
    ("evo1_ros/control", {"rclpy", "torch", "transformers"}, None),
    ("evo1_ros/sim", {"rclpy", "torch"}, None),
    ("evo1_ros/driver", {"rclpy", "torch"}, None),
    ("recording", {"rclpy", "torch", "transformers"}, "_node.py"),
]


@pytest.mark.parametrize(("directory", "forbidden", "node_suffix"), RULES)
def test_layer_rule(directory, forbidden, node_suffix):
    files = sorted((REPO / directory).rglob("*.py"))
    assert files, f"{directory} has no sources"
    for path in files:
        banned = set(forbidden)
        if node_suffix and path.name.endswith(node_suffix):
            banned.discard("rclpy")
        bad = imported_roots(path) & banned
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)} (docs/architecture.md §2 layer rule)"

"""The layer rule of docs/architecture.md §2, checked on the import statements of every source file.

model/ has no ROS; control/, sim/, driver/ and recording/ have no torch. rclpy is imported only by
the ROS nodes (evo1_ros/nodes/), the ROS helpers (evo1_ros/ros/) and `evo1 sim episodes`
(evo1_ros/cli/sim_episodes.py, an rclpy client of the sim and policy nodes); nothing else in
evo1_ros/ or recording/ may import it, and there is no file-name exemption.
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
    # (directory, forbidden import roots)
    ("evo1_ros/model", {"rclpy", "evo1_msgs"}),
    ("evo1_ros/control", {"rclpy", "torch", "transformers"}),
    ("evo1_ros/sim", {"rclpy", "torch"}),
    ("evo1_ros/driver", {"rclpy", "torch"}),
    ("recording", {"rclpy", "torch", "transformers"}),
]

# The only places in evo1_ros/ and recording/ that may import rclpy (folders end with "/").
RCLPY_ALLOWED = ("evo1_ros/nodes/", "evo1_ros/ros/", "evo1_ros/cli/sim_episodes.py")


@pytest.mark.parametrize(("directory", "forbidden"), RULES)
def test_layer_rule(directory, forbidden):
    files = sorted((REPO / directory).rglob("*.py"))
    assert files, f"{directory} has no sources"
    for path in files:
        bad = imported_roots(path) & forbidden
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)} (docs/architecture.md §2 layer rule)"


def test_rclpy_only_in_nodes_and_ros_helpers():
    files = sorted([*(REPO / "evo1_ros").rglob("*.py"), *(REPO / "recording").rglob("*.py")])
    offenders = []
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        if "rclpy" in imported_roots(path) and not rel.startswith(RCLPY_ALLOWED):
            offenders.append(rel)
    assert not offenders, f"{offenders} import rclpy; only {RCLPY_ALLOWED} may (docs/architecture.md §2)"


def test_rclpy_allow_list_is_current():
    for entry in RCLPY_ALLOWED:
        assert (REPO / entry).exists(), f"{entry} in RCLPY_ALLOWED does not exist"

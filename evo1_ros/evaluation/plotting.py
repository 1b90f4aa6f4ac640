"""Shared look of the OpenCV evaluation plots (`evo1 eval sim` summary.png, bag_eval traces.png)."""

from __future__ import annotations

# BGR colour per joint (j1..j6, then the gripper), cycled when there are more columns.
JOINT_COLORS: list[tuple[int, int, int]] = [
    (180, 80, 30),
    (40, 130, 240),
    (50, 170, 50),
    (40, 40, 210),
    (150, 80, 160),
    (70, 100, 140),
    (200, 0, 200),
]

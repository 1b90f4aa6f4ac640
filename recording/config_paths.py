"""Where the default config files live: the source tree, or the installed ``share/evo1_ros/config``."""

from __future__ import annotations

import sys
from pathlib import Path


def default_config(name: str) -> Path:
    """Path of ``config/<name>`` (source checkout first, then the installed share directory)."""
    candidates = [
        Path(__file__).resolve().parents[1] / "config" / name,
        Path(sys.prefix) / "share" / "evo1_ros" / "config" / name,
    ]
    for c in candidates:
        if c.is_file():
            return c
    return candidates[0]

"""Where the default config files live: the source tree, or the installed ``share/evo1_ros/config``."""

from __future__ import annotations

from pathlib import Path

from evo1_ros.paths import package_share


def default_config(name: str) -> Path:
    """Path of ``config/<name>`` (it may not exist: callers report a missing file with its path)."""
    return package_share() / "config" / name

"""Where the package's share files (config/, launch/, urdf/) are, installed or in a source checkout.

An editable/pip install has no `share/evo1_ros`; a colcon install does. Both must find the same
config files, so every lookup goes through `package_share()`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "evo1_ros"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def package_share(package: str = PACKAGE) -> Path:
    """Directory holding config/, launch/ and urdf/ of `package`.

    Order: a source checkout next to this module (so edits take effect without reinstalling), then
    the ament index (colcon / ROS install), then `<prefix>/share/<package>` for each AMENT_PREFIX_PATH
    entry.
    """
    if package == PACKAGE and (_SOURCE_ROOT / "package.xml").is_file() and (_SOURCE_ROOT / "config").is_dir():
        return _SOURCE_ROOT
    for prefix in ament_prefixes():
        candidate = Path(prefix) / "share" / package
        if (candidate / "package.xml").is_file() or candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"cannot find the share directory of package '{package}': not in a source checkout and not under "
        f"AMENT_PREFIX_PATH={os.environ.get('AMENT_PREFIX_PATH', '')!r}. Source your ROS/colcon workspace "
        "or run from the repository."
    )


def ament_prefixes() -> list[str]:
    """AMENT_PREFIX_PATH entries plus the running interpreter's prefix (the venv, where the wheels live)."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if sys.prefix not in prefixes:
        prefixes.append(sys.prefix)
    return prefixes


def share_file(*parts: str, package: str = PACKAGE, must_exist: bool = True) -> Path:
    """Path of a file in the package share (e.g. "urdf", "x.urdf").

    Raises naming the path if it is missing, unless `must_exist` is False (for callers that open it
    later and report a missing file with its path themselves).
    """
    path = package_share(package).joinpath(*parts)
    if must_exist and not path.is_file():
        raise FileNotFoundError(f"{'/'.join(parts)} not found: {path}")
    return path


def config_file(name: str, package: str = PACKAGE, must_exist: bool = True) -> Path:
    """Path of `config/<name>` in the package share; raises with the searched path if missing (see share_file)."""
    return share_file("config", name, package=package, must_exist=must_exist)

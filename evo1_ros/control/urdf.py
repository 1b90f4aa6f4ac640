"""Minimal URDF reader: links, joints, origins, axes, limits and mimic tags (xml.etree, no ROS).

Kinematics and tests need the robot description without a ROS install (no urdfdom / xacro), and
only the kinematic tree matters to them, so this reads just that part of the file.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evo1_ros.paths import share_file

URDF_FILE = "xarm6_with_gripper.urdf"
MOVABLE_TYPES = ("revolute", "continuous", "prismatic")


def default_urdf_path() -> Path:
    """``urdf/xarm6_with_gripper.urdf`` of the source tree or the installed package share."""
    return share_file("urdf", URDF_FILE)


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF fixed-axis roll-pitch-yaw: R = Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def transform(xyz: np.ndarray, rpy: np.ndarray) -> np.ndarray:
    """4x4 homogeneous transform from a URDF ``<origin xyz rpy>``."""
    T = np.eye(4)
    T[:3, :3] = rpy_matrix(*rpy)
    T[:3, 3] = xyz
    return T


@dataclass(frozen=True, eq=False)
class UrdfJoint:
    """One ``<joint>``: origin is parent link frame -> joint frame at q = 0; axis in the joint frame."""

    name: str
    type: str
    parent: str
    child: str
    origin: np.ndarray
    axis: np.ndarray
    lower: float
    upper: float
    velocity: float
    effort: float
    mimic: str | None = None
    mimic_multiplier: float = 1.0
    mimic_offset: float = 0.0

    @property
    def movable(self) -> bool:
        """True for revolute, continuous and prismatic joints (not fixed/floating/planar)."""
        return self.type in MOVABLE_TYPES


@dataclass(frozen=True, eq=False)
class UrdfModel:
    """The kinematic tree of a URDF file."""

    name: str
    links: tuple[str, ...]
    joints: dict[str, UrdfJoint]

    @property
    def root(self) -> str:
        """The one link that is nobody's child."""
        children = {j.child for j in self.joints.values()}
        roots = [link for link in self.links if link not in children]
        if len(roots) != 1:
            raise ValueError(f"URDF must have exactly one root link, found {roots}")
        return roots[0]

    def chain(self, base: str, tip: str) -> list[UrdfJoint]:
        """Joints from ``base`` down to ``tip`` (in that order); ``ValueError`` if tip is not below base."""
        by_child = {j.child: j for j in self.joints.values()}
        for link in (base, tip):
            if link not in self.links:
                raise ValueError(f"unknown link {link!r}")
        out: list[UrdfJoint] = []
        link = tip
        while link != base:
            joint = by_child.get(link)
            if joint is None:
                raise ValueError(f"link {tip!r} is not below {base!r}")
            out.append(joint)
            link = joint.parent
        return out[::-1]


def _floats(text: str | None, default: tuple[float, ...]) -> np.ndarray:
    if text is None:
        return np.array(default, dtype=float)
    vals = np.array([float(x) for x in text.split()], dtype=float)
    if vals.shape != (len(default),) or not np.all(np.isfinite(vals)):
        raise ValueError(f"bad vector {text!r}")
    return vals


def parse_urdf(source: str | Path) -> UrdfModel:
    """Parse a URDF file path (or the XML text itself when it starts with '<')."""
    text = str(source)
    root = ET.fromstring(text) if text.lstrip().startswith("<") else ET.parse(text).getroot()
    if root.tag != "robot":
        raise ValueError(f"not a URDF: root element is <{root.tag}>")
    links = tuple(el.attrib["name"] for el in root.findall("link"))
    if len(set(links)) != len(links):
        raise ValueError("duplicate link names")
    joints: dict[str, UrdfJoint] = {}
    for el in root.findall("joint"):
        name, jtype = el.attrib["name"], el.attrib["type"]
        if name in joints:
            raise ValueError(f"duplicate joint {name!r}")
        origin = el.find("origin")
        xyz = _floats(None if origin is None else origin.get("xyz"), (0.0, 0.0, 0.0))
        rpy = _floats(None if origin is None else origin.get("rpy"), (0.0, 0.0, 0.0))
        axis_el = el.find("axis")
        axis = _floats(None if axis_el is None else axis_el.get("xyz"), (1.0, 0.0, 0.0))
        if jtype in MOVABLE_TYPES:
            norm = np.linalg.norm(axis)
            if norm == 0:
                raise ValueError(f"joint {name!r} has a zero axis")
            axis = axis / norm
        lim = el.find("limit")
        lower, upper = -math.inf, math.inf
        velocity, effort = math.inf, math.inf
        if lim is not None:
            velocity = float(lim.get("velocity", "inf"))
            effort = float(lim.get("effort", "inf"))
            if jtype != "continuous":
                lower = float(lim.get("lower", "0"))
                upper = float(lim.get("upper", "0"))
        elif jtype in ("revolute", "prismatic"):
            raise ValueError(f"joint {name!r} ({jtype}) needs a <limit>")
        mimic_el = el.find("mimic")
        joints[name] = UrdfJoint(
            name=name,
            type=jtype,
            parent=el.find("parent").attrib["link"],
            child=el.find("child").attrib["link"],
            origin=transform(xyz, rpy),
            axis=axis,
            lower=lower,
            upper=upper,
            velocity=velocity,
            effort=effort,
            mimic=None if mimic_el is None else mimic_el.attrib["joint"],
            mimic_multiplier=1.0 if mimic_el is None else float(mimic_el.get("multiplier", "1")),
            mimic_offset=0.0 if mimic_el is None else float(mimic_el.get("offset", "0")),
        )
    for j in joints.values():
        if j.parent not in links or j.child not in links:
            raise ValueError(f"joint {j.name!r} connects unknown links {j.parent!r} -> {j.child!r}")
    return UrdfModel(root.get("name", ""), links, joints)

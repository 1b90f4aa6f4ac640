"""config/foxglove_layout.json and config/evo1.rviz: valid, and every topic/field they show exists.

Issue 16 item 3. The topics the stack publishes are derived from its own config (launch YAMLs for
node names and namespaces, the camera list and topic pattern), each with its message class; every
Foxglove message path (`/topic.field[i].field`) is walked through the real message definitions, so a
renamed topic or field fails here instead of leaving an empty panel.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from evo1_msgs.msg import PolicyStatus, RecorderStatus
from evo1_ros.control.limits import JointLimits
from evo1_ros.control.urdf import default_urdf_path, parse_urdf
from tf2_msgs.msg import TFMessage

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
FOXGLOVE = CONFIG / "foxglove_layout.json"
RVIZ = CONFIG / "evo1.rviz"


def _node(description: str, executable: str) -> dict[str, Any]:
    nodes = yaml.safe_load((CONFIG / "launch" / f"{description}.yaml").read_text())["nodes"]
    return next(n for n in nodes if n["executable"] == executable)


def _fqn(node: dict[str, Any], topic: str) -> str:
    """Topic name as launched: `~/x` -> /<ns>/<node>/x, `x` -> /<ns>/x."""
    ns = node.get("namespace", "").rstrip("/")
    if topic.startswith("~/"):
        return f"{ns}/{node.get('name', node['executable'])}/{topic[2:]}"
    return f"{ns}/{topic}"


def _ros_parameters(path: Path) -> dict[str, Any]:
    """The one node section of a params file, whatever its key (node name or /**)."""
    (section,) = yaml.safe_load(path.read_text()).values()
    return section["ros__parameters"]


def stack_topics() -> dict[str, type]:
    driver = _node("xarm_driver", "xarm_driver")
    params = _ros_parameters(CONFIG / "sim.yaml")
    policy_cams = _ros_parameters(CONFIG / "evo1_policy.yaml")["cameras"]
    assert set(policy_cams) <= set(params["cameras"]), "policy cameras are rendered by the sim"
    topics: dict[str, type] = {params["camera_topic"].format(name=c): Image for c in params["cameras"]}
    topics |= {
        _fqn(driver, "joint_states"): JointState,
        _fqn(driver, "joint_trajectory"): JointTrajectory,
        _fqn(driver, "driver_status"): DiagnosticStatus,
        _fqn(_node("xarm6_policy", "evo1_policy"), "~/status"): PolicyStatus,
        _fqn(_node("teleop_record", "recorder"), "~/status"): RecorderStatus,
        "/robot_description": String,
        "/tf": TFMessage,
    }
    return topics


def _message_class(type_name: str) -> type:
    pkg, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def _walk(cls: type, fields: str) -> str:
    """Type string at `a.b[0].c` inside `cls`; AssertionError naming the first unknown field."""
    type_str = ""
    for part in fields.split("."):
        m = re.fullmatch(r"(\w+)(\[\d+\])?", part)
        assert m, f"cannot read path segment {part!r}"
        known = cls.get_fields_and_field_types()
        assert m.group(1) in known, f"{cls.__name__} has no field {m.group(1)!r} (fields: {sorted(known)})"
        type_str = known[m.group(1)]
        if m.group(2):
            inner = re.fullmatch(r"sequence<(.+?)(?:, \d+)?>|(.+)\[\d+\]", type_str)
            assert inner, f"{m.group(1)} ({type_str}) is not a sequence"
            type_str = inner.group(1) or inner.group(2)
        if "/" in type_str:
            cls = _message_class(type_str)
    return type_str


def _panels(layout: Any) -> list[str]:
    if isinstance(layout, str):
        return [layout]
    return _panels(layout["first"]) + _panels(layout["second"])


def _foxglove_paths(config: dict[str, Any]) -> list[str]:
    paths = [p["value"] for p in config.get("paths", [])]
    for key in ("topicPath",):
        if key in config:
            paths.append(config[key])
    if "imageMode" in config:
        paths.append(config["imageMode"]["imageTopic"])
    for layer in config.get("layers", {}).values():
        if "topic" in layer:
            paths.append(layer["topic"])
    paths += list(config.get("topics", {}))
    return paths


def test_foxglove_layout_panels_and_paths_match_the_stack() -> None:
    doc = json.loads(FOXGLOVE.read_text())
    configs = doc["configById"]
    shown = _panels(doc["layout"])
    for panel_id in list(shown):
        if panel_id.startswith("Tab!"):
            for tab in configs[panel_id]["tabs"]:
                shown += _panels(tab["layout"])
    assert sorted(shown) == sorted(configs), "every panel is placed once and configured"

    topics = stack_topics()
    used = set()
    for panel_id, config in configs.items():
        for path in _foxglove_paths(config):
            topic, _, fields = path.partition(".")
            assert topic in topics, f"{panel_id}: {topic} is not published by the stack ({sorted(topics)})"
            used.add(topic)
            if fields:
                leaf = _walk(topics[topic], fields)
                assert "/" not in leaf and not leaf.startswith("sequence"), f"{path} is not a plottable value"
    for must in ("/robot_description", "/xarm/joint_states", "/xarm/joint_trajectory"):
        assert must in used
    assert {t for t, c in topics.items() if c in (Image, PolicyStatus, RecorderStatus)} <= used

    # joint plots: index i of joint_states / trajectory positions is the i-th configured joint
    names = list(JointLimits.from_yaml().names)
    for panel_id, config in configs.items():
        for p in config.get("paths", []):
            m = re.search(r"position[s]?\[(\d+)\]$", p["value"])
            if m:
                assert p["label"].split()[0] == names[int(m.group(1))], (panel_id, p)
    urdf = parse_urdf(default_urdf_path())
    assert configs["3D!arm"]["followTf"] in urdf.links


def test_rviz_config_is_valid_and_matches_the_stack() -> None:
    doc = yaml.safe_load(RVIZ.read_text())
    manager = doc["Visualization Manager"]
    urdf = parse_urdf(default_urdf_path())
    assert manager["Global Options"]["Fixed Frame"] in urdf.links
    topics = stack_topics()
    expected = {"rviz_default_plugins/RobotModel": String, "rviz_default_plugins/Image": Image}
    seen = {}
    for display in manager["Displays"]:
        cls = display["Class"]
        topic = (display.get("Description Topic") or display.get("Topic") or {}).get("Value")
        if cls in expected:
            assert topic in topics and topics[topic] is expected[cls], (display["Name"], topic)
            seen[topic] = cls
    assert "/robot_description" in seen
    robot = next(d for d in manager["Displays"] if d["Class"].endswith("RobotModel"))
    # robot_state / robot_state_publisher publish the description once, transient local
    assert robot["Description Topic"]["Durability Policy"] == "Transient Local"
    assert any(d["Class"] == "rviz_default_plugins/TF" for d in manager["Displays"])
    assert {t for t, c in topics.items() if c is Image} <= set(seen)


@pytest.mark.parametrize("path", [FOXGLOVE, RVIZ])
def test_view_configs_are_installed(path: Path) -> None:
    """setup.py ships them to share/evo1_ros/config (colcon installs, `ros2 pkg prefix`)."""
    from glob import glob

    setup = (REPO / "setup.py").read_text()
    pattern = re.search(r'\(f"share/\{PACKAGE\}/config", glob\("([^"]+)"\)\)', setup)
    assert pattern, "setup.py must install config/ files"
    assert f"config/{path.name}" in glob(pattern.group(1), root_dir=REPO)

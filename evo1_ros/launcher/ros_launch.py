"""Build a standard launch_ros LaunchDescription from a YAML launch description.

Used by launch/*.launch.py for users with a ROS 2 install (`ros2 launch evo1_ros NAME.launch.py`).
Every YAML construct maps to its usual launch counterpart: arguments -> DeclareLaunchArgument,
`$(var x)` -> LaunchConfiguration, `$(find-pkg-share p)` -> FindPackageShare, `$(env N D)` ->
EnvironmentVariable, `if`/`unless` -> IfCondition/UnlessCondition, `required` -> on_exit=Shutdown,
`ros: false` -> ExecuteProcess of `<prefix>/lib/<pkg>/<exe>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evo1_ros.launcher.description import SUBSTITUTION, LaunchDescriptionSpec, NodeSpec, load_description


def to_substitutions(text: str) -> Any:
    """A string with $(...) parts -> a list of launch substitutions (plain strings stay strings)."""
    from launch.substitutions import EnvironmentVariable, LaunchConfiguration, TextSubstitution
    from launch_ros.substitutions import FindPackageShare

    if not SUBSTITUTION.search(text):
        return text
    parts: list[Any] = []
    pos = 0
    for match in SUBSTITUTION.finditer(text):
        if match.start() > pos:
            parts.append(TextSubstitution(text=text[pos : match.start()]))
        kind, body = match.group("kind"), match.group("body").strip()
        if kind == "var":
            parts.append(LaunchConfiguration(body))
        elif kind == "find-pkg-share":
            parts.append(FindPackageShare(body))
        else:
            name, _, default = body.partition(" ")
            parts.append(EnvironmentVariable(name, default_value=default.strip()))
        pos = match.end()
    if pos < len(text):
        parts.append(TextSubstitution(text=text[pos:]))
    return parts


def _tree(obj: Any) -> Any:
    if isinstance(obj, str):
        return to_substitutions(obj)
    if isinstance(obj, dict):
        return {k: _tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_tree(v) for v in obj]
    return obj


def _condition(node: NodeSpec) -> Any:
    from launch.conditions import IfCondition, UnlessCondition

    if node.if_condition is not None:
        return IfCondition(to_substitutions(node.if_condition))
    if node.unless_condition is not None:
        return UnlessCondition(to_substitutions(node.unless_condition))
    return None


def node_action(node: NodeSpec) -> Any:
    """The launch action for one YAML node entry."""
    from launch.actions import ExecuteProcess, Shutdown
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackagePrefix

    common: dict[str, Any] = {"output": "screen"}
    condition = _condition(node)
    if condition is not None:
        common["condition"] = condition
    if node.required:
        common["on_exit"] = Shutdown(reason=f"required node '{node.name}' exited")
    if node.env:
        common["additional_env"] = {k: to_substitutions(v) for k, v in node.env}
    if not node.ros:
        exe = PathJoinSubstitution([FindPackagePrefix(node.package), "lib", node.package, node.executable])
        return ExecuteProcess(
            cmd=[exe, *(to_substitutions(a) for a in node.arguments)], name=node.name, **common
        )
    return Node(
        package=node.package,
        executable=node.executable,
        name=to_substitutions(node.name),
        namespace=to_substitutions(node.namespace) if node.namespace else None,
        parameters=[_tree(p) for p in node.parameters],
        remappings=[(to_substitutions(a), to_substitutions(b)) for a, b in node.remappings],
        arguments=[to_substitutions(a) for a in node.arguments],
        **common,
    )


def launch_description(spec: LaunchDescriptionSpec) -> Any:
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument

    actions: list[Any] = []
    for arg in spec.arguments:
        kwargs: dict[str, Any] = {"description": arg.description}
        if arg.default is not None:
            kwargs["default_value"] = arg.default
        if arg.choices is not None:
            kwargs["choices"] = list(arg.choices)
        actions.append(DeclareLaunchArgument(arg.name, **kwargs))
    actions.extend(node_action(n) for n in spec.nodes)
    return LaunchDescription(actions)


def launch_description_from_yaml(name_or_path: str | Path) -> Any:
    """Entry point of launch/NAME.launch.py: the LaunchDescription of config/launch/NAME.yaml."""
    return launch_description(load_description(name_or_path))

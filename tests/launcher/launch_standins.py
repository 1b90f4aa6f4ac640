"""Recording stand-ins for the `launch` / `launch_ros` classes our launch files use.

The real packages are not installable from PyPI, so these classes record their constructor
arguments, and `evaluate()` resolves recorded substitutions the way launch does, for comparing the
launch_ros path with `evo1 launch`. Only what our builder uses exists here: a new use of an API fails
loudly (AttributeError/ImportError) instead of passing silently.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any


class Recorded:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


def _module(name: str, **classes: type) -> types.ModuleType:
    mod = types.ModuleType(name)
    for cls_name, cls in classes.items():
        setattr(mod, cls_name, cls)
    return mod


def make_class(name: str) -> type:
    return type(name, (Recorded,), {})


CLASSES = {
    name: make_class(name)
    for name in [
        "LaunchDescription",
        "DeclareLaunchArgument",
        "ExecuteProcess",
        "Shutdown",
        "IfCondition",
        "UnlessCondition",
        "LaunchConfiguration",
        "TextSubstitution",
        "EnvironmentVariable",
        "PathJoinSubstitution",
        "Node",
        "FindPackageShare",
        "FindPackagePrefix",
    ]
}


def install(monkeypatch: Any) -> None:
    """Put the stand-in modules into sys.modules for the duration of a test."""
    c = CLASSES
    mods = {
        "launch": _module("launch", LaunchDescription=c["LaunchDescription"]),
        "launch.actions": _module(
            "launch.actions",
            DeclareLaunchArgument=c["DeclareLaunchArgument"],
            ExecuteProcess=c["ExecuteProcess"],
            Shutdown=c["Shutdown"],
        ),
        "launch.conditions": _module(
            "launch.conditions", IfCondition=c["IfCondition"], UnlessCondition=c["UnlessCondition"]
        ),
        "launch.substitutions": _module(
            "launch.substitutions",
            LaunchConfiguration=c["LaunchConfiguration"],
            TextSubstitution=c["TextSubstitution"],
            EnvironmentVariable=c["EnvironmentVariable"],
            PathJoinSubstitution=c["PathJoinSubstitution"],
        ),
        "launch_ros": _module("launch_ros"),
        "launch_ros.actions": _module("launch_ros.actions", Node=c["Node"]),
        "launch_ros.substitutions": _module(
            "launch_ros.substitutions",
            FindPackageShare=c["FindPackageShare"],
            FindPackagePrefix=c["FindPackagePrefix"],
        ),
    }
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)


def evaluate(value: Any, args: dict[str, str], share: Any, prefix: Any) -> Any:
    """Resolve a recorded substitution (or list/dict of them) like launch would."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if all(isinstance(v, (Recorded, str)) for v in value) and any(isinstance(v, Recorded) for v in value):
            return "".join(str(evaluate(v, args, share, prefix)) for v in value)
        return [evaluate(v, args, share, prefix) for v in value]
    if isinstance(value, dict):
        return {k: evaluate(v, args, share, prefix) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(evaluate(v, args, share, prefix) for v in value)
    name = type(value).__name__
    if name == "TextSubstitution":
        return value.kwargs["text"]
    if name == "LaunchConfiguration":
        return args[value.args[0]]
    if name == "FindPackageShare":
        return str(share(value.args[0]))
    if name == "FindPackagePrefix":
        return str(prefix(value.args[0]))
    if name == "EnvironmentVariable":
        return os.environ.get(value.args[0], value.kwargs.get("default_value", ""))
    if name == "PathJoinSubstitution":
        return os.path.join(*(str(evaluate(p, args, share, prefix)) for p in value.args[0]))
    return value

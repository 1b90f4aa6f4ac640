"""launch/*.launch.py (launch_ros) and `evo1 launch` start the same nodes from the same YAML.

`launch`/`launch_ros` are not installable from PyPI, so the launch files run against recording
stand-ins (tests/launcher/launch_standins.py); the recorded actions are evaluated with the same
argument values and compared with what `evo1 launch` resolves.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import launch_standins
import pytest
import yaml

from evo1_ros.launcher.description import (
    is_true,
    launch_dir,
    load_description,
    parse_cli_arguments,
    resolve,
)
from evo1_ros.paths import package_share

REPO = Path(__file__).resolve().parents[2]
DESCRIPTIONS = sorted(p.stem for p in (REPO / "config" / "launch").glob("*.yaml"))


def _launch_actions(monkeypatch, launch_file: Path):
    launch_standins.install(monkeypatch)
    module = runpy.run_path(str(launch_file))
    ld = module["generate_launch_description"]()
    assert type(ld).__name__ == "LaunchDescription"
    return ld.args[0]


def _evaluate_nodes(actions, args):
    """What launch would start: (name, package, exe, ns, files, params, remaps, args, required)."""
    ev = lambda v: launch_standins.evaluate(v, args, package_share, lambda p: "/PREFIX")  # noqa: E731
    started = []
    for action in actions:
        kind = type(action).__name__
        if kind == "DeclareLaunchArgument":
            continue
        kw = action.kwargs
        cond = kw.get("condition")
        if cond is not None:
            value = is_true(ev(cond.args[0]), "condition")
            if (type(cond).__name__ == "IfCondition") != value:
                continue
        required = type(kw.get("on_exit")).__name__ == "Shutdown"
        if kind == "Node":
            files, params = [], {}
            for p in kw["parameters"]:
                value = ev(p)
                if isinstance(value, dict):
                    params.update(
                        {
                            k: yaml.safe_load(v) if isinstance(v, str) and isinstance(p[k], list) else v
                            for k, v in value.items()
                        }
                    )
                else:
                    files.append(value)
            started.append(
                (
                    ev(kw["name"]),
                    kw["package"],
                    kw["executable"],
                    ev(kw["namespace"]) or "",
                    files,
                    params,
                    [tuple(ev(r)) for r in kw["remappings"]],
                    [ev(a) for a in kw["arguments"]],
                    required,
                    True,
                )
            )
        else:
            assert kind == "ExecuteProcess"
            cmd = [ev(c) for c in kw["cmd"]]
            _, _, lib, package, exe = cmd[0].rsplit("/", 4)
            assert lib == "lib"
            started.append((kw["name"], package, exe, "", [], {}, [], cmd[1:], required, False))
    return started


def _evo1_nodes(spec, args):
    return [
        (
            n.name,
            n.package,
            n.executable,
            n.namespace,
            n.param_files,
            n.params,
            n.remappings,
            n.arguments,
            n.required,
            n.ros,
        )
        for n in resolve(spec, args)
    ]


def test_every_description_has_a_launch_file():
    assert DESCRIPTIONS, "config/launch/ holds no launch description"
    for name in DESCRIPTIONS:
        assert (REPO / "launch" / f"{name}.launch.py").is_file(), f"launch/{name}.launch.py missing"
    assert launch_dir() == REPO / "config" / "launch"


@pytest.mark.parametrize("name", DESCRIPTIONS)
def test_launch_file_matches_evo1_launch(monkeypatch, name):
    spec = load_description(name)
    declared = _launch_actions(monkeypatch, REPO / "launch" / f"{name}.launch.py")
    decl = [a for a in declared if type(a).__name__ == "DeclareLaunchArgument"]
    assert [a.args[0] for a in decl] == [a.name for a in spec.arguments]
    assert [a.kwargs.get("default_value") for a in decl] == [a.default for a in spec.arguments]

    # Defaults, and every boolean argument flipped, give the same node set both ways.
    variants = [[]]
    for arg in spec.arguments:
        if arg.choices and set(arg.choices) == {"true", "false"}:
            variants.append([f"{arg.name}:={'false' if arg.default == 'true' else 'true'}"])
    for tokens in variants:
        args = parse_cli_arguments(spec, tokens)
        actions = _launch_actions(monkeypatch, REPO / "launch" / f"{name}.launch.py")
        assert _evaluate_nodes(actions, args) == _evo1_nodes(spec, args), tokens

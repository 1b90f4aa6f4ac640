"""Every node's `config/<node>.yaml` and its table in docs/architecture.md follow its declarations.

Each parameter is declared once, as a field of the node's config dataclass (`PARAMETERS` in the
node module, see evo1_ros/parameters.py); the YAML files users copy must not drift from it.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from evo1_ros.parameters import param_specs
from evo1_ros.paths import config_file

REPO = Path(__file__).resolve().parent.parent

NODE_CONFIGS = [
    ("xarm_driver.yaml", "evo1_ros.nodes.xarm_driver"),
    ("teleop.yaml", "evo1_ros.nodes.teleop"),
    ("evo1_policy.yaml", "evo1_ros.nodes.evo1_policy"),
    ("recorder.yaml", "evo1_ros.nodes.recorder"),
    ("sim.yaml", "evo1_ros.nodes.sim"),
    ("robot_state.yaml", "evo1_ros.nodes.robot_state"),
]


def yaml_parameters(name: str) -> dict[str, Any]:
    """The ros__parameters of the file's single node section, nested keys joined with '.'."""
    doc = yaml.safe_load(config_file(name).read_text())
    assert isinstance(doc, dict) and len(doc) == 1, f"{name}: one node section expected, got {list(doc)}"
    section = next(iter(doc.values()))
    params = section["ros__parameters"]
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}{key}.", sub)
        else:
            flat[prefix[:-1]] = value

    walk("", params)
    return flat


def same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b  # 2 == 2.0: a params file may write an int for a float


@pytest.mark.parametrize(("yaml_name", "module"), NODE_CONFIGS)
def test_config_file_matches_the_declarations(yaml_name: str, module: str) -> None:
    specs = {s.name: s for s in param_specs(importlib.import_module(module).PARAMETERS)}
    in_file = yaml_parameters(yaml_name)
    assert sorted(set(in_file) - set(specs)) == [], f"{yaml_name} sets parameters {module} does not declare"
    assert sorted(set(specs) - set(in_file)) == [], f"{yaml_name} lacks declared parameters"
    wrong = {n: (v, specs[n].default) for n, v in in_file.items() if not same(v, specs[n].default)}
    assert wrong == {}, f"{yaml_name}: value in the file != declared default (file, declared)"


def test_architecture_parameter_tables_are_generated_from_the_declarations() -> None:
    script = REPO / "scripts" / "param_docs.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr

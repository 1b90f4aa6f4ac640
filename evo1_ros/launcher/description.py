"""The YAML launch description format: parse, validate, substitute arguments, build command lines.

Format (config/launch/NAME.yaml)::

    description: xArm6 driver, optionally against the loopback controller
    arguments:                       # declared arguments, all values are strings
      - {name: sim, default: "true", description: "use the loopback controller", choices: ["true", "false"]}
    nodes:
      - name: xarm_driver            # node name (ROS: -r __node:=NAME); also the output prefix
        package: evo1_ros
        executable: xarm_driver      # <prefix>/lib/<package>/<executable>, or a console script
        namespace: /xarm             # optional
        parameters:                  # params files and inline dicts, applied in order (last wins)
          - $(find-pkg-share evo1_ros)/config/xarm_driver.yaml
          - {robot_ip: "$(var robot_ip)"}
        remappings: {joint_states: /xarm/joint_states}
        arguments: []                # extra argv before --ros-args
        ros: true                    # false: a plain program (no --ros-args appended)
        required: true               # if it exits, everything is stopped
        if: $(var sim)               # or `unless:`; "true"/"false" after substitution
        env: {}                      # extra environment

Substitutions inside any string: ``$(var NAME)``, ``$(find-pkg-share PKG)``, ``$(env NAME [DEFAULT])``.
Inline parameter values are parsed as YAML after substitution ("1.5" -> 1.5, "true" -> True), as
launch_ros does.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evo1_ros.paths import ament_prefixes, package_share

SUBSTITUTION = re.compile(r"\$\((?P<kind>var|find-pkg-share|env)\s+(?P<body>[^)]*)\)")
_NODE_KEYS = {
    "name",
    "package",
    "executable",
    "namespace",
    "parameters",
    "remappings",
    "arguments",
    "ros",
    "required",
    "if",
    "unless",
    "env",
}
_ARG_KEYS = {"name", "default", "description", "choices"}


class LaunchError(ValueError):
    """A launch description or argument that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class ArgumentSpec:
    name: str
    default: str | None
    description: str = ""
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class NodeSpec:
    """A node entry as written in the YAML (strings still contain substitutions)."""

    name: str
    package: str
    executable: str
    namespace: str = ""
    parameters: tuple[Any, ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()
    arguments: tuple[str, ...] = ()
    ros: bool = True
    required: bool = False
    if_condition: str | None = None
    unless_condition: str | None = None
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LaunchDescriptionSpec:
    name: str
    path: Path
    description: str
    arguments: tuple[ArgumentSpec, ...]
    nodes: tuple[NodeSpec, ...]


@dataclass
class ResolvedNode:
    """A node with every substitution applied: what `evo1 launch` starts."""

    name: str
    package: str
    executable: str
    namespace: str
    param_files: list[str]
    params: dict[str, Any]
    remappings: list[tuple[str, str]]
    arguments: list[str]
    ros: bool
    required: bool
    env: dict[str, str] = field(default_factory=dict)

    def ros_args(self, inline_params_file: str | None = None) -> list[str]:
        """The `--ros-args ...` part of the command line (empty for non-ROS programs)."""
        if not self.ros:
            return []
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        for path in self.param_files:
            args += ["--params-file", path]
        if inline_params_file:
            args += ["--params-file", inline_params_file]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args


def launch_dir() -> Path:
    return package_share() / "config" / "launch"


def available_descriptions() -> list[str]:
    return sorted(p.stem for p in launch_dir().glob("*.yaml"))


def load_description(name_or_path: str | Path) -> LaunchDescriptionSpec:
    """Load `config/launch/<name>.yaml` (or a path to a YAML file) and validate its structure."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = launch_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise LaunchError(
            f"no launch description '{name_or_path}' ({path}); available: {', '.join(available_descriptions())}"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise LaunchError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
        raise LaunchError(f"{path}: expected a mapping with a non-empty 'nodes' list")
    arguments = tuple(_parse_argument(path, a) for a in data.get("arguments") or [])
    nodes = tuple(_parse_node(path, i, n) for i, n in enumerate(data["nodes"]))
    names = [f"{n.namespace}/{n.name}" for n in nodes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise LaunchError(f"{path}: duplicate node names {dupes}")
    declared = {a.name for a in arguments}
    for used in sorted(_used_vars(data["nodes"]) - declared):
        raise LaunchError(f"{path}: '$(var {used})' is used but no argument '{used}' is declared")
    return LaunchDescriptionSpec(
        name=path.stem,
        path=path,
        description=str(data.get("description", "")),
        arguments=arguments,
        nodes=nodes,
    )


def _parse_argument(path: Path, raw: Any) -> ArgumentSpec:
    if not isinstance(raw, dict) or "name" not in raw:
        raise LaunchError(f"{path}: each argument needs a 'name' (got {raw!r})")
    unknown = set(raw) - _ARG_KEYS
    if unknown:
        raise LaunchError(f"{path}: argument '{raw['name']}' has unknown keys {sorted(unknown)}")
    default = raw.get("default")
    choices = raw.get("choices")
    return ArgumentSpec(
        name=str(raw["name"]),
        default=None if default is None else _as_text(default),
        description=str(raw.get("description", "")),
        choices=None if choices is None else tuple(_as_text(c) for c in choices),
    )


def _parse_node(path: Path, index: int, raw: Any) -> NodeSpec:
    where = f"{path}: nodes[{index}]"
    if not isinstance(raw, dict):
        raise LaunchError(f"{where}: expected a mapping")
    unknown = set(raw) - _NODE_KEYS
    if unknown:
        raise LaunchError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_NODE_KEYS)})")
    for key in ("package", "executable"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise LaunchError(f"{where}: '{key}' is required")
    params = raw.get("parameters") or []
    if not isinstance(params, list) or not all(isinstance(p, (str, dict)) for p in params):
        raise LaunchError(f"{where}: 'parameters' must be a list of file paths and mappings")
    remaps = raw.get("remappings") or {}
    if not isinstance(remaps, dict):
        raise LaunchError(f"{where}: 'remappings' must be a mapping from -> to")
    args = raw.get("arguments") or []
    if not isinstance(args, list):
        raise LaunchError(f"{where}: 'arguments' must be a list")
    if raw.get("if") is not None and raw.get("unless") is not None:
        raise LaunchError(f"{where}: use either 'if' or 'unless', not both")
    env = raw.get("env") or {}
    if not isinstance(env, dict):
        raise LaunchError(f"{where}: 'env' must be a mapping")
    return NodeSpec(
        name=str(raw.get("name") or raw["executable"]),
        package=raw["package"],
        executable=raw["executable"],
        namespace=str(raw.get("namespace", "")),
        parameters=tuple(params),
        remappings=tuple((str(k), str(v)) for k, v in remaps.items()),
        arguments=tuple(_as_text(a) for a in args),
        ros=bool(raw.get("ros", True)),
        required=bool(raw.get("required", False)),
        if_condition=None if raw.get("if") is None else _as_text(raw["if"]),
        unless_condition=None if raw.get("unless") is None else _as_text(raw["unless"]),
        env=tuple((str(k), _as_text(v)) for k, v in env.items()),
    )


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _used_vars(obj: Any) -> set[str]:
    if isinstance(obj, str):
        return {m.group("body").strip() for m in SUBSTITUTION.finditer(obj) if m.group("kind") == "var"}
    if isinstance(obj, dict):
        return set().union(*(_used_vars(k) | _used_vars(v) for k, v in obj.items())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(_used_vars(v) for v in obj)) if obj else set()
    return set()


def parse_cli_arguments(spec: LaunchDescriptionSpec, tokens: list[str]) -> dict[str, str]:
    """`name:=value` tokens -> argument values with defaults filled in; errors name the fix."""
    declared = {a.name: a for a in spec.arguments}
    values: dict[str, str] = {}
    for token in tokens:
        if ":=" not in token:
            raise LaunchError(f"launch argument '{token}' must look like name:=value")
        name, value = token.split(":=", 1)
        if name not in declared:
            raise LaunchError(
                f"'{spec.name}' has no argument '{name}'; declared: {', '.join(sorted(declared)) or 'none'}"
            )
        values[name] = value
    for arg in spec.arguments:
        if arg.name not in values:
            if arg.default is None:
                raise LaunchError(
                    f"argument '{arg.name}' is required: add {arg.name}:=VALUE ({arg.description})"
                )
            values[arg.name] = arg.default
        if arg.choices is not None and values[arg.name] not in arg.choices:
            raise LaunchError(
                f"argument '{arg.name}'={values[arg.name]!r} must be one of {list(arg.choices)}"
            )
    return values


def substitute(text: str, args: dict[str, str]) -> str:
    """Apply $(var), $(find-pkg-share) and $(env) substitutions to one string."""

    def repl(match: re.Match[str]) -> str:
        kind, body = match.group("kind"), match.group("body").strip()
        if kind == "var":
            if body not in args:
                raise LaunchError(f"unknown launch argument '$(var {body})'")
            return args[body]
        if kind == "find-pkg-share":
            try:
                return str(package_share(body))
            except FileNotFoundError as exc:
                raise LaunchError(str(exc)) from None
        name, _, default = body.partition(" ")
        if name not in os.environ and not default:
            raise LaunchError(f"environment variable '{name}' is not set and has no default")
        return os.environ.get(name, default.strip())

    return SUBSTITUTION.sub(repl, text)


def is_true(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise LaunchError(f"{where}: condition must be true/false, got {text!r}")


def _substitute_tree(obj: Any, args: dict[str, str]) -> Any:
    if isinstance(obj, str):
        if not SUBSTITUTION.search(obj):
            return obj  # a literal string stays a string, as in launch_ros
        replaced = substitute(obj, args)
        try:
            value = yaml.safe_load(replaced)
        except yaml.YAMLError:
            return replaced
        return value if isinstance(value, (bool, int, float, str, list)) else replaced
    if isinstance(obj, dict):
        return {str(k): _substitute_tree(v, args) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute_tree(v, args) for v in obj]
    return obj


def resolve(spec: LaunchDescriptionSpec, args: dict[str, str]) -> list[ResolvedNode]:
    """The nodes to start for these argument values (conditions evaluated, substitutions applied)."""
    nodes = []
    for node in spec.nodes:
        where = f"{spec.path}: node '{node.name}'"
        if node.if_condition is not None and not is_true(substitute(node.if_condition, args), where):
            continue
        if node.unless_condition is not None and is_true(substitute(node.unless_condition, args), where):
            continue
        files: list[str] = []
        inline: dict[str, Any] = {}
        for entry in node.parameters:
            if isinstance(entry, str):
                path = substitute(entry, args)
                if not Path(path).is_file():
                    raise LaunchError(f"{where}: parameters file not found: {path}")
                files.append(path)
            else:
                inline.update(_substitute_tree(entry, args))
        nodes.append(
            ResolvedNode(
                name=substitute(node.name, args),
                package=node.package,
                executable=node.executable,
                namespace=substitute(node.namespace, args),
                param_files=files,
                params=inline,
                remappings=[(substitute(a, args), substitute(b, args)) for a, b in node.remappings],
                arguments=[substitute(a, args) for a in node.arguments],
                ros=node.ros,
                required=node.required,
                env={k: substitute(v, args) for k, v in node.env},
            )
        )
    return nodes


def find_executable(package: str, executable: str) -> str:
    """Path of a package's executable: `<prefix>/lib/<package>/<exe>` (colcon/ROS layout) first,
    then a console script of that name next to the running interpreter (pip/venv layout)."""
    for prefix in ament_prefixes():
        candidate = Path(prefix) / "lib" / package / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    script = Path(sys.executable).parent / executable
    if script.is_file() and os.access(script, os.X_OK):
        return str(script)
    found = shutil.which(executable)
    if found and package == "evo1_ros":
        return found
    raise LaunchError(
        f"executable '{executable}' of package '{package}' not found in {[*ament_prefixes()]}/lib/{package} "
        "nor as a console script; run `make setup` or source your workspace"
    )

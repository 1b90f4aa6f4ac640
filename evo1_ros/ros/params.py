"""Parameter helpers: declare a node's parameters from one table, with descriptions and ranges.

Nodes list their parameters once (`ParamSpec`s); `declare_parameters` declares them with
descriptors (so `ros2 param describe` is useful), validates them, and returns a plain namespace
the node reads from. A bad value stops the node at start-up with a message naming the parameter,
instead of surfacing as odd behaviour later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node


class ParameterError(ValueError):
    """A parameter value a node cannot run with."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default (its type is the parameter's type), description and limits."""

    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: Sequence[Any] | None = None
    read_only: bool = False


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """Descriptor with the description and limits as text.

    Ranges are checked by `check_value`, not by rclpy's descriptor ranges: those reject an
    out-of-range override at declaration with a generic error, ours names the parameter and bound.
    `dynamic_typing` for float parameters lets a params file write `2` for `2.0`.
    """
    constraints = []
    if spec.min is not None or spec.max is not None:
        lo = "-inf" if spec.min is None else spec.min
        hi = "inf" if spec.max is None else spec.max
        constraints.append(f"range [{lo}, {hi}]")
    if spec.choices:
        constraints.append("one of: " + ", ".join(map(str, spec.choices)))
    return ParameterDescriptor(
        description=spec.description,
        read_only=spec.read_only,
        additional_constraints="; ".join(constraints),
        dynamic_typing=isinstance(spec.default, float),
    )


def check_value(spec: ParamSpec, value: Any) -> Any:
    """Validate `value` against `spec`; returns it (ints widened to float for float params)."""
    if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"parameter '{spec.name}' must be finite, got {value}")
    if spec.min is not None and isinstance(value, (int, float)) and value < spec.min:
        raise ParameterError(f"parameter '{spec.name}'={value} is below its minimum {spec.min}")
    if spec.max is not None and isinstance(value, (int, float)) and value > spec.max:
        raise ParameterError(f"parameter '{spec.name}'={value} is above its maximum {spec.max}")
    if spec.choices is not None and value not in spec.choices:
        raise ParameterError(f"parameter '{spec.name}'={value!r} must be one of {list(spec.choices)}")
    return value


def declare_parameters(node: Node, specs: Iterable[ParamSpec]) -> SimpleNamespace:
    """Declare every spec on `node` and return their validated values as attributes.

    Float ranges are checked here too, because rclpy only enforces descriptor ranges on set, and
    a params file may carry an int where a float is wanted ("2" for 2.0), which we accept.
    """
    values: dict[str, Any] = {}
    for spec in specs:
        param = node.declare_parameter(spec.name, spec.default, _descriptor(spec))
        values[spec.name.replace(".", "_")] = check_value(spec, param.value)
    return SimpleNamespace(**values)

"""Declare a node's parameters from their one declaration, with descriptions and ranges.

The declaration is a config dataclass (`evo1_ros.parameters`): `declare_config` declares each of
its fields with a descriptor (so `ros2 param describe` is useful), validates the values and builds
the config. A bad value stops the node at start-up with a message naming the parameter, instead of
surfacing as odd behaviour later.
"""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from evo1_ros.parameters import ParamSpec, from_parameters, param_specs


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


def declare_config(node: Node, cls: type) -> Any:
    """Declare every parameter of config dataclass `cls` on `node` and build it from their values."""
    values = {
        spec.name: node.declare_parameter(spec.name, spec.default, _descriptor(spec)).value
        for spec in param_specs(cls)
    }
    return from_parameters(cls, values)  # checks each value against its spec

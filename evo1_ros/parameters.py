"""Parameters declared once: a config dataclass field carries its ROS name, default, description and range.

ros2_control declares every controller parameter once (a ``*_parameters.yaml`` with type, default,
description and validation) and generates the rest. Here the single declaration is the field of a
ROS-free config dataclass (``DriverConfig``, ``JogSettings``, ...)::

    servo_rate: float = param(200.0, "mode-1 stream rate (Hz)", min=1.0, max=250.0)

From it come the node's declarations with descriptors (`param_specs`, used by
`evo1_ros.ros.params.declare_config`), the validation that runs whether the config is built by a
node or directly in a test (`validate_fields`, called from ``__post_init__``), the config built from the
declared values (`from_parameters`), and the check that ``config/*.yaml`` matches the declarations
(tests/test_config_files.py). No rclpy here: control/, driver/ and recording/ may use it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_PARAM = "evo1_ros.param"
_NESTED = "evo1_ros.nested"


class ParameterError(ValueError):
    """A parameter value a node cannot run with; the message names the parameter."""


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: name, default (its type is the parameter's type), description and limits."""

    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: Sequence[Any] | None = None
    read_only: bool = False


@dataclass(frozen=True)
class _FieldParam:
    description: str
    name: str | None
    min: float | None
    max: float | None
    choices: Sequence[Any] | None
    read_only: bool
    to_value: Callable[[Any], Any] | None  # parameter value -> field value (e.g. list -> tuple)
    to_param: Callable[[Any], Any] | None  # field value -> parameter value (for the declared default)


def param(
    default: Any,
    description: str,
    *,
    name: str | None = None,
    min: float | None = None,
    max: float | None = None,
    choices: Sequence[Any] | None = None,
    read_only: bool = False,
    to_value: Callable[[Any], Any] | None = None,
    to_param: Callable[[Any], Any] | None = None,
) -> Any:
    """A dataclass field that is also a ROS parameter.

    `default` is the field's default (lists become a default factory). `name` is the parameter's
    name when it differs from the field's (e.g. ``host`` is declared as ``robot_ip``). `to_value`
    converts a declared value to the field's type, `to_param` the field's default back to what ROS
    declares (a tuple field is declared as a list).
    """
    meta = {_PARAM: _FieldParam(description, name, min, max, choices, read_only, to_value, to_param)}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def nested(cls: type) -> Any:
    """A field holding another config dataclass whose parameters are declared flat beside ours."""
    return dataclasses.field(default_factory=cls, metadata={_NESTED: cls})


def _fields(cls: type) -> Iterator[tuple[dataclasses.Field, _FieldParam | None, type | None]]:
    for f in dataclasses.fields(cls):
        yield f, f.metadata.get(_PARAM), f.metadata.get(_NESTED)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"config field '{f.name}' declared as a parameter needs a default")


def _spec(f: dataclasses.Field, info: _FieldParam, value: Any) -> ParamSpec:
    return ParamSpec(
        name=info.name or f.name,
        default=info.to_param(value) if info.to_param else value,
        description=info.description,
        min=info.min,
        max=info.max,
        choices=info.choices,
        read_only=info.read_only,
    )


def param_specs(cls: type) -> list[ParamSpec]:
    """Every parameter `cls` declares (nested configs flattened), with the field defaults."""
    specs: list[ParamSpec] = []
    for f, info, sub in _fields(cls):
        if sub is not None:
            specs.extend(param_specs(sub))
        elif info is not None:
            specs.append(_spec(f, info, _field_default(f)))
    names = [s.name for s in specs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise TypeError(f"{cls.__name__} declares the parameter(s) {duplicated} more than once")
    return specs


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


def validate_fields(config: Any) -> None:
    """Check every parameter field of `config` (not nested ones: they validated themselves).

    Called from a config's ``__post_init__`` so a config built directly (tests, benchmarks) is held
    to the same ranges as one built from ROS parameters.
    """
    for f, info, _ in _fields(type(config)):
        if info is not None:
            spec = _spec(f, info, getattr(config, f.name))
            check_value(spec, spec.default)


def from_parameters(cls: type, values: Mapping[str, Any]) -> Any:
    """Build `cls` from declared parameter values (keyed by parameter name; missing = default).

    Each value is checked against its declaration; keys `cls` does not declare are ignored.
    """
    kwargs: dict[str, Any] = {}
    for f, info, sub in _fields(cls):
        if sub is not None:
            kwargs[f.name] = from_parameters(sub, values)
        elif info is not None and (info.name or f.name) in values:
            spec = _spec(f, info, _field_default(f))
            value = check_value(spec, values[spec.name])
            kwargs[f.name] = info.to_value(value) if info.to_value else value
    return cls(**kwargs)

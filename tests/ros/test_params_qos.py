"""Parameter helpers reject bad values with the parameter's name; QoS presets are what they claim."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

from evo1_ros.parameters import ParameterError, param, validate_fields
from evo1_ros.ros.params import declare_config
from evo1_ros.ros.qos import COMMAND, LATCHED, SENSOR, qos_preset


@dataclass(frozen=True)
class Settings:
    rate: float = param(30.0, "frame rate (Hz)", min=1.0, max=120.0)
    mode: str = param("servo", "control mode", choices=["servo", "online"])
    count: int = param(3, "how many", min=0, max=10)
    names: list[str] = param(["a", "b"], "names")

    def __post_init__(self) -> None:
        validate_fields(self)


def make(ros, name, **overrides):
    params = [Parameter(k, value=v) for k, v in overrides.items()]
    node = ros.node(name, parameter_overrides=params)
    return node, declare_config(node, Settings)


def test_defaults_and_overrides(ros):
    _, p = make(ros, "defaults")
    assert (p.rate, p.mode, p.count, p.names) == (30.0, "servo", 3, ["a", "b"])
    node, p = make(ros, "overridden", rate=15, mode="online")  # int for a float parameter is accepted
    assert p.rate == 15.0 and isinstance(p.rate, float) and p.mode == "online"
    desc = node.describe_parameter("rate")
    assert desc.description == "frame rate (Hz)" and "range [1.0, 120.0]" in desc.additional_constraints


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rate": 500.0}, "'rate'=500.0 is above its maximum 120.0"),
        ({"rate": 0.5}, "'rate'=0.5 is below its minimum 1.0"),
        ({"rate": float("nan")}, "'rate' must be finite"),
        ({"mode": "velocity"}, "'mode'='velocity' must be one of \\['servo', 'online'\\]"),
        ({"count": -1}, "'count'=-1 is below its minimum 0"),
    ],
)
def test_bad_values_name_the_parameter(ros, overrides, message):
    with pytest.raises(ParameterError, match=message):
        make(ros, "bad", **overrides)


def test_qos_presets():
    assert SENSOR.reliability == ReliabilityPolicy.BEST_EFFORT
    assert COMMAND.reliability == ReliabilityPolicy.RELIABLE and COMMAND.depth == 1
    assert LATCHED.durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert qos_preset("sensor") is SENSOR
    with pytest.raises(ValueError, match="unknown QoS preset 'fast'"):
        qos_preset("fast")

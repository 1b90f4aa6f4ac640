"""The one-declaration parameter scheme: specs, validation and construction come from the dataclass."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from evo1_ros.parameters import ParameterError, from_parameters, nested, param, param_specs, validate_fields


@dataclass(frozen=True)
class Inner:
    cpus: tuple[int, ...] = param(
        (), "cpus", name="cpu_affinity", to_value=tuple, to_param=lambda v: list(v) or [-1]
    )
    priority: int = param(50, "priority", name="rt_priority", min=0, max=99)

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class Outer:
    rate: float = param(30.0, "rate (Hz)", min=1.0, max=120.0)
    mode: str = param("servo", "mode", choices=["servo", "online"])
    names: list[str] = param(["a", "b"], "names")
    inner: Inner = nested(Inner)
    not_a_parameter: int = 7

    def __post_init__(self) -> None:
        validate_fields(self)


def test_specs_flatten_nested_configs_with_parameter_names_and_declared_defaults() -> None:
    specs = {s.name: s for s in param_specs(Outer)}
    assert list(specs) == ["rate", "mode", "names", "cpu_affinity", "rt_priority"]
    assert specs["cpu_affinity"].default == [-1]  # the tuple field () is declared as ROS's "any"
    assert (specs["rate"].min, specs["rate"].max, specs["mode"].choices) == (1.0, 120.0, ["servo", "online"])
    assert Outer().names is not Outer().names  # list defaults are not shared between instances


def test_from_parameters_converts_and_keeps_unset_fields_at_their_defaults() -> None:
    cfg = from_parameters(Outer, {"rate": 15, "cpu_affinity": [1, 0], "rt_priority": 10, "unknown": 1})
    assert cfg.rate == 15.0 and isinstance(cfg.rate, float)
    assert cfg.inner == Inner(cpus=(1, 0), priority=10)
    assert (cfg.mode, cfg.names, cfg.not_a_parameter) == ("servo", ["a", "b"], 7)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Outer(rate=500.0), "'rate'=500.0 is above its maximum 120.0"),
        (lambda: Outer(rate=float("nan")), "'rate' must be finite"),
        (lambda: Outer(mode="velocity"), "'mode'='velocity' must be one of"),
        (lambda: Inner(priority=-1), "'rt_priority'=-1 is below its minimum 0"),
        (lambda: from_parameters(Outer, {"rt_priority": 100}), "'rt_priority'=100 is above its maximum 99"),
    ],
)
def test_a_config_built_directly_or_from_parameters_is_held_to_the_same_ranges(build, message) -> None:
    with pytest.raises(ParameterError, match=message):
        build()


def test_a_parameter_declared_twice_is_refused() -> None:
    @dataclass(frozen=True)
    class Twice:
        a: int = param(1, "a", name="x")
        b: int = param(2, "b", name="x")

    with pytest.raises(TypeError, match=r"declares the parameter\(s\) \['x'\] more than once"):
        param_specs(Twice)

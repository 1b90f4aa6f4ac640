"""Settings of the loopback xArm controller, loadable from `config/xarm_loopback_controller.yaml`.

The YAML may be ROS-params shaped (`xarm_loopback_controller: {ros__parameters: {...}}`), nested
under `xarm_loopback_controller:`, or flat. Unknown keys are an error so typos do not go unnoticed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NODE_KEY = "xarm_loopback_controller"

#: xArm6 joint limits of the SDK pre-check table (docs/xarm_protocol.md §9), rad
XARM6_LOWER = [-2 * math.pi, -2.059488, -3.92699, -2 * math.pi, -1.692969, -2 * math.pi]
XARM6_UPPER = [2 * math.pi, 2.094395, 0.191986, 2 * math.pi, math.pi, 2 * math.pi]


@dataclass
class GripperConfig:
    """xArm Gripper behind the tool RS-485 port."""

    initial_pulses: float = 850.0  # 850 = open, 0 = closed
    default_speed_rpm: float = 2000.0
    pulses_per_s_per_rpm: float = 0.5  # 2000 r/min -> 1000 pulses/s (full stroke in ~0.85 s)
    version: list[int] = field(default_factory=lambda: [3, 4, 3])
    tool_baud_index: int = 11  # index into the SDK's baud table; 11 = 2 Mbit/s, what the gripper needs
    gripper_baud_index: int = 11
    grasp_tolerance_pulses: float = 10.0


@dataclass
class FaultConfig:
    """Fault injection that can be set at start-up (the Python API can change it at run time)."""

    reply_delay_s: float = 0.0  # every command reply is delayed by this much
    tool_bus_delay_s: float = 0.0  # extra delay of tool RS-485 replies (gripper; registers 124/127/128)
    c24_speed_limit: float = math.pi  # rad/s; servo_j implied speed above this raises C24
    c24_reference_period_s: float = 0.1  # implied speed = jump / this period
    collision_after_s: float | None = None  # raise C31 this long after start
    drop_connections_after_s: float | None = None  # close every client socket this long after start
    partial_frame_timeout_s: float = 2.0  # a frame left incomplete this long closes its connection


@dataclass
class LoopbackConfig:
    """Everything the loopback controller can be configured with."""

    host: str = "127.0.0.2"
    command_port: int = 502
    report_ports: dict[str, int] = field(
        default_factory=lambda: {"normal": 30001, "rich": 30002, "real": 30003}
    )
    report_rates_hz: dict[str, float] = field(
        default_factory=lambda: {"normal": 5.0, "rich": 5.0, "real": 100.0}
    )
    plant_rate_hz: float = 250.0
    version: str = "6,6,XI1202,AC1302,v1.12.10"  # "<axis>,<type>,<arm SN>,<box SN>,v<fw>" (fw < 2.0.102)
    robot_sn: str = "XI120222A0001"
    control_box_sn: str = "AC130222B0001"
    initial_joints: list[float] = field(default_factory=lambda: [0.0] * 6)
    joint_lower: list[float] = field(default_factory=lambda: list(XARM6_LOWER))
    joint_upper: list[float] = field(default_factory=lambda: list(XARM6_UPPER))
    max_joint_speed: float = math.pi  # rad/s (180°/s), servo mode tracks at this speed
    max_joint_acc: float = 20.0  # rad/s², servo mode / stops / default joint velocity acceleration
    joint_inertia: list[float] = field(default_factory=lambda: [0.6, 0.8, 0.5, 0.1, 0.1, 0.02])
    collision_sensitivity: int = 3
    teach_sensitivity: int = 3
    teach_speed: float = 0.5  # rad/s, how fast `guide_to` moves the arm in free-drive mode
    max_cmd_queue: int = 512
    gripper: GripperConfig = field(default_factory=GripperConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)

    def validate(self) -> LoopbackConfig:
        """Raise ValueError on inconsistent settings; returns self for chaining."""
        if len(self.initial_joints) != 6 or len(self.joint_lower) != 6 or len(self.joint_upper) != 6:
            raise ValueError("initial_joints, joint_lower and joint_upper need 6 values (xArm6)")
        if any(lo >= hi for lo, hi in zip(self.joint_lower, self.joint_upper, strict=True)):
            raise ValueError("joint_lower must be below joint_upper")
        if set(self.report_ports) != {"normal", "rich", "real"}:
            raise ValueError("report_ports needs exactly the keys normal, rich, real")
        if any(r <= 0 for r in self.report_rates_hz.values()) or self.plant_rate_hz <= 0:
            raise ValueError("rates must be positive")
        if not 0 <= self.collision_sensitivity <= 5 or not 1 <= self.teach_sensitivity <= 5:
            raise ValueError("collision_sensitivity must be 0..5 and teach_sensitivity 1..5")
        if self.max_joint_speed <= 0 or self.max_joint_acc <= 0 or self.teach_speed <= 0:
            raise ValueError("speed/acceleration limits must be positive")
        if self.faults.reply_delay_s < 0 or self.faults.c24_reference_period_s <= 0:
            raise ValueError("reply_delay_s must be >= 0 and c24_reference_period_s > 0")
        if self.faults.tool_bus_delay_s < 0:
            raise ValueError("tool_bus_delay_s must be >= 0")
        if not 0 <= self.gripper.tool_baud_index <= 12 or not 0 <= self.gripper.gripper_baud_index <= 12:
            raise ValueError("baud indices must be 0..12")
        return self


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown key(s) in {where}: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{name} must be a mapping")
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> LoopbackConfig:
    """Build a validated config from a (possibly ROS-params shaped) mapping."""
    if NODE_KEY in data:
        data = data[NODE_KEY] or {}
    if "ros__parameters" in data:
        data = data["ros__parameters"] or {}
    return _build(LoopbackConfig, dict(data), NODE_KEY).validate()


def load_config(path: str | Path) -> LoopbackConfig:
    """Read a YAML file into a validated config."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return config_from_dict(data)

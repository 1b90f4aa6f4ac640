"""Report frames pushed on ports 30001 (normal), 30002 (rich) and 30003 (real), docs/xarm_protocol.md §6.

Every frame starts with its own length as u32 BE; the SDK reads exactly that many bytes, so each port
always sends frames of one size: real 87, normal 145, rich 587 bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

REAL_SIZE = 87
NORMAL_SIZE = 145
RICH_SIZE = 587


@dataclass
class ArmSnapshot:
    """Everything a report frame carries, captured atomically under the controller lock."""

    state: int
    mode: int
    cmdnum: int
    angles: Sequence[float]  # 7, rad
    pose: Sequence[float]  # 6, mm / rad
    torques: Sequence[float]  # 7
    speeds: Sequence[float]  # 7, rad/s
    tcp_speed: float  # mm/s
    brake_mask: int
    enable_mask: int
    error: int
    warn: int
    collision_sensitivity: int
    teach_sensitivity: int
    version: str
    counter: int
    axis_angle: Sequence[float] = (0.0, 0.0, 0.0)
    tcp_offset: Sequence[float] = (0.0,) * 6
    tcp_load: Sequence[float] = (0.0,) * 4
    gravity: Sequence[float] = (0.0, 0.0, -1.0)
    joint_lower: Sequence[float] = (0.0,) * 7
    joint_upper: Sequence[float] = (0.0,) * 7
    max_joint_speed: float = 3.14159
    max_joint_acc: float = 20.0
    currents: Sequence[float] = field(default_factory=lambda: (0.0,) * 7)


def _f(values: Sequence[float], count: int) -> list[float]:
    vals = [float(v) for v in values][:count]
    return vals + [0.0] * (count - len(vals))


def _common(frame: bytearray, s: ArmSnapshot) -> None:
    struct.pack_into(">I", frame, 0, len(frame))
    frame[4] = (s.state & 0x0F) | ((s.mode & 0x0F) << 4)
    struct.pack_into(">H", frame, 5, s.cmdnum & 0xFFFF)
    struct.pack_into("<7f", frame, 7, *_f(s.angles, 7))
    struct.pack_into("<6f", frame, 35, *_f(s.pose, 6))
    struct.pack_into("<7f", frame, 59, *_f(s.torques, 7))


def _normal_part(frame: bytearray, s: ArmSnapshot) -> None:
    _common(frame, s)
    frame[87] = s.brake_mask & 0xFF
    frame[88] = s.enable_mask & 0xFF
    frame[89] = s.error & 0xFF
    frame[90] = s.warn & 0xFF
    struct.pack_into("<6f", frame, 91, *_f(s.tcp_offset, 6))
    struct.pack_into("<4f", frame, 115, *_f(s.tcp_load, 4))
    frame[131] = s.collision_sensitivity
    frame[132] = s.teach_sensitivity
    struct.pack_into("<3f", frame, 133, *_f(s.gravity, 3))


def build_real_frame(s: ArmSnapshot) -> bytes:
    """87-byte frame of port 30003 (state/mode, cmdnum, joints, pose, torques)."""
    frame = bytearray(REAL_SIZE)
    _common(frame, s)
    return bytes(frame)


def build_normal_frame(s: ArmSnapshot) -> bytes:
    """145-byte frame of port 30001 (adds brake/enable bits, error/warn, TCP offset/load, sensitivities)."""
    frame = bytearray(NORMAL_SIZE)
    _normal_part(frame, s)
    return bytes(frame)


def build_rich_frame(s: ArmSnapshot) -> bytes:
    """587-byte frame of port 30002 (normal part plus type, version, limits, speeds, counters...)."""
    frame = bytearray(RICH_SIZE)
    _normal_part(frame, s)
    frame[145] = 6  # arm type (xArm6)
    frame[146] = 6  # axis count
    frame[147] = 0xAA  # master id
    frame[148] = 0x55  # slave id
    version = s.version.encode("ascii", "replace")[:29]
    frame[151 : 151 + len(version)] = version
    # TCP jerk, min/max acc (mm/s²), min/max speed (mm/s)
    struct.pack_into("<5f", frame, 181, 10000.0, 1.0, 50000.0, 0.1, 1000.0)
    # joint jerk, min/max acc, min/max speed (rad)
    struct.pack_into("<5f", frame, 201, 1000.0, 0.01, s.max_joint_acc, 0.0001, s.max_joint_speed)
    struct.pack_into("<2f", frame, 221, 1000.0, 20.0)  # rotation jerk, max rotation acc
    struct.pack_into(">7b", frame, 245, *([35] * 7))  # temperatures °C
    struct.pack_into("<f", frame, 252, float(s.tcp_speed))
    struct.pack_into("<7f", frame, 256, *_f(s.speeds, 7))
    struct.pack_into(">I", frame, 284, s.counter & 0xFFFFFFFF)
    frame[314] = 0  # not a simulation robot: the SDK must not short-circuit enable/gripper calls
    frame[315] = 1 if s.collision_sensitivity > 0 else 0  # collision detection on
    struct.pack_into(">7H", frame, 341, *([4800] * 7))  # joint voltages ×100 (48 V)
    struct.pack_into("<7f", frame, 355, *_f(s.currents, 7))
    struct.pack_into("<3f", frame, 482, *_f(s.axis_angle, 3))
    limits: list[float] = []
    for lo, hi in zip(_f(s.joint_lower, 7), _f(s.joint_upper, 7), strict=True):
        limits += [lo, hi]
    struct.pack_into("<14f", frame, 516, *limits)
    return bytes(frame)


BUILDERS = {"real": build_real_frame, "normal": build_normal_frame, "rich": build_rich_frame}

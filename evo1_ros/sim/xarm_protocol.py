"""Constants and byte-level helpers of the xArm private TCP protocol (docs/xarm_protocol.md §4-§5).

Header and u16 values are big-endian; FP32 and int32 command parameters are little-endian; tool
(RS-485) register addresses and Modbus payloads are big-endian.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

HEADER = struct.Struct(">HHH")  # transaction id, protocol id, length (bytes after the header)

PROT_STANDARD_MODBUS = 0
PROT_HEARTBEAT = 1
PROT_PRIVATE = (2, 3)
MAX_FRAME_LENGTH = 1024  # value of the LEN field; requests of the supported subset are far shorter


class Reg:
    """Register (function code) numbers of the command socket."""

    GET_VERSION = 1
    GET_ROBOT_SN = 2
    MOTION_EN = 11
    SET_STATE = 12
    GET_STATE = 13
    GET_CMDNUM = 14
    GET_ERROR = 15
    CLEAN_ERR = 16
    CLEAN_WAR = 17
    SET_MODE = 19
    MOVE_JOINT = 23
    MOVE_HOME = 25
    MOVE_SERVOJ = 29
    SET_TCP_JERK = 31
    SET_TCP_MAXACC = 32
    SET_JOINT_JERK = 33
    SET_JOINT_MAXACC = 34
    SET_TCP_OFFSET = 35
    SET_LOAD_PARAM = 36
    SET_COLLIS_SENS = 37
    SET_TEACH_SENS = 38
    CLEAN_CONF = 39
    SAVE_CONF = 40
    GET_TCP_POSE = 41
    GET_JOINT_POS = 42
    VC_SET_JOINTV = 81
    RS485_RTU = 124
    TGPIO_W16B = 127
    TGPIO_R16B = 128
    FEEDBACK_CHECK = 253
    SET_FEEDBACK_TYPE = 254


class Status:
    """Bits of the status byte that follows the register in every reply."""

    INVALID = 0x08  # result invalid / parameter or command rejected
    NOT_READY = 0x10  # not enabled, stopped, or mode/config changed (state 4/5)
    WARN = 0x20
    ERROR = 0x40


class State:
    """Controller states as reported (`arm.state`)."""

    READY_CMD = 0  # the value sent with set_state(0); never reported
    MOVING = 1
    SLEEPING = 2
    PAUSED = 3
    STOPPED = 4
    CONFIG_CHANGED = 5
    DECELERATING = 6


class Mode:
    """Controller modes the loopback controller accepts."""

    POSITION = 0
    SERVO = 1
    TEACH = 2
    JOINT_VELOCITY = 4
    JOINT_ONLINE = 6
    SUPPORTED = (0, 1, 2, 4, 6)


class ErrorCode:
    """Controller error codes (C-codes) the loopback controller can raise."""

    TOOL_COMM = 19
    JOINT_LIMIT = 23
    OVER_SPEED = 24
    COLLISION = 31


class WarnCode:
    """Controller warning codes the loopback controller can raise."""

    QUEUE_FULL = 11
    PARAM_ERROR = 12
    UNKNOWN_COMMAND = 13


@dataclass(frozen=True)
class Request:
    """One decoded command-socket frame."""

    transaction_id: int
    protocol: int
    register: int
    params: bytes


def encode_request(transaction_id: int, protocol: int, register: int, params: bytes = b"") -> bytes:
    """Build a request frame (used by tests and tools that talk to the controller without the SDK)."""
    return HEADER.pack(transaction_id, protocol, 1 + len(params)) + bytes([register]) + params


def encode_reply(request: Request, status: int, data: bytes = b"") -> bytes:
    """Build the private-protocol reply to `request`; the protocol id is echoed as the SDK expects."""
    return (
        HEADER.pack(request.transaction_id, request.protocol, 2 + len(data))
        + bytes([request.register, status & 0xFF])
        + data
    )


def encode_modbus_exception(transaction_id: int, unit_id: int, function: int, exception: int) -> bytes:
    """Standard Modbus-TCP exception reply (protocol id 0), for the unsupported standard register map."""
    return HEADER.pack(transaction_id, PROT_STANDARD_MODBUS, 3) + bytes(
        [unit_id & 0xFF, (function | 0x80) & 0xFF, exception & 0xFF]
    )


def fp32_le(values: Sequence[float]) -> bytes:
    """Pack floats as little-endian FP32 (joint angles, speeds, poses)."""
    return struct.pack(f"<{len(values)}f", *values)


def unpack_fp32_le(data: bytes, count: int, offset: int = 0) -> list[float]:
    """Unpack `count` little-endian FP32 values; raises struct.error when `data` is too short."""
    return list(struct.unpack_from(f"<{count}f", data, offset))

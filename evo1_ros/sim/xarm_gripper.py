"""The xArm Gripper as a Modbus-RTU slave behind the robot's tool RS-485 port (docs/xarm_protocol.md §7).

The SDK reaches it through register 124 (host id 9 + Modbus-RTU PDU to slave 8, no CRC) and checks
the tool port's baud rate through registers 127/128. Positions are pulses (850 open, 0 closed); the
plant's gripper joint is the xarm_ros2 `drive_joint` in rad: rad = (850 - pulses) / 1000.
"""

from __future__ import annotations

import struct

from evo1_ros.sim.loopback_config import GripperConfig
from evo1_ros.sim.plant import JointPlant

SLAVE_ID = 8
HOST_ID = 9

REG_STATUS = 0x0000
REG_ERROR = 0x000F
REG_ENABLE = 0x0100
REG_MODE = 0x0101
REG_RESET_ERR = 0x0109
REG_SPEED = 0x0303
REG_TARGET_HI = 0x0700
REG_TARGET_LO = 0x0701
REG_POS_HI = 0x0702
REG_POS_LO = 0x0703
REG_VERSION = (0x0801, 0x0802, 0x0803)
REG_ZERO = 0x0817

TOOL_REG_BAUD_READ = 0x0A0B
TOOL_REG_BAUD_WRITE = 0x1A0B
TOOL_REG_SOFT_REBOOT = 0x0607

EXC_ILLEGAL_FUNCTION = 0x01
EXC_ILLEGAL_ADDRESS = 0x02
EXC_ILLEGAL_VALUE = 0x03

STATUS_STOPPED, STATUS_MOVING, STATUS_GRASPED = 0, 1, 2
PULSES_MIN, PULSES_MAX = -10.0, 850.0  # stroke of the xArm Gripper (Studio accepts -10..850)


def pulses_to_rad(pulses: float) -> float:
    """Gripper pulses -> drive_joint rad (xarm_ros2 convention)."""
    return (850.0 - float(pulses)) / 1000.0


def rad_to_pulses(rad: float) -> float:
    """drive_joint rad -> gripper pulses."""
    return 850.0 - 1000.0 * float(rad)


class XArmGripperModel:
    """Register map and behaviour of the gripper and of the tool port's baud setting."""

    def __init__(self, plant: JointPlant, config: GripperConfig) -> None:
        self._plant = plant
        self._cfg = config
        self.enabled = False
        self.mode = 0
        self.speed_rpm = float(config.default_speed_rpm)
        self.target_pulses = float(config.initial_pulses)
        self.error = 0
        self.tool_baud_index = int(config.tool_baud_index)
        self._pending_baud_index: int | None = None
        self.frames_handled = 0
        self.reboots = 0
        self.other_tool_registers: dict[int, float] = {}

    # --- state ------------------------------------------------------------------------------------
    @property
    def position_pulses(self) -> int:
        """Current position in pulses (as the gripper reports it)."""
        return round(rad_to_pulses(self._plant.gripper_position))

    @property
    def link_ok(self) -> bool:
        """The gripper only answers when the tool port runs at the gripper's baud rate."""
        return self.tool_baud_index == self._cfg.gripper_baud_index

    def status(self) -> int:
        """Status register: 0 stopped, 1 moving, 2 stopped on an object before the target."""
        if self._plant.gripper_is_moving():
            return STATUS_MOVING
        reachable = min(max(self.target_pulses, PULSES_MIN), PULSES_MAX)
        if self.enabled and abs(self.position_pulses - reachable) > self._cfg.grasp_tolerance_pulses:
            return STATUS_GRASPED
        return STATUS_STOPPED

    def set_error(self, code: int) -> None:
        """Put the gripper in fault `code` (0 clears): it disables itself and stops."""
        self.error = int(code)
        if self.error:
            self.enabled = False
            self._plant.hold_gripper()

    def _apply_target(self) -> None:
        if self.enabled and self.mode == 0 and self.error == 0:
            speed = max(self.speed_rpm, 1.0) * self._cfg.pulses_per_s_per_rpm / 1000.0
            target = min(max(self.target_pulses, PULSES_MIN), PULSES_MAX)
            self._plant.set_gripper_target(pulses_to_rad(target), speed)

    # --- Modbus registers -------------------------------------------------------------------------
    def _read(self, addr: int) -> int:
        pos = self.position_pulses & 0xFFFFFFFF
        target = int(round(self.target_pulses)) & 0xFFFFFFFF
        values = {
            REG_STATUS: self.status(),
            REG_ERROR: self.error,
            REG_ENABLE: int(self.enabled),
            REG_MODE: self.mode,
            REG_SPEED: int(self.speed_rpm),
            REG_TARGET_HI: target >> 16,
            REG_TARGET_LO: target & 0xFFFF,
            REG_POS_HI: pos >> 16,
            REG_POS_LO: pos & 0xFFFF,
            REG_VERSION[0]: self._cfg.version[0],
            REG_VERSION[1]: self._cfg.version[1],
            REG_VERSION[2]: self._cfg.version[2],
        }
        if addr not in values:
            raise KeyError(addr)
        return values[addr] & 0xFFFF

    def _write(self, addr: int, values: list[int]) -> None:
        """Write consecutive registers starting at `addr`; raises KeyError/ValueError on bad input."""
        regs = dict(zip(range(addr, addr + len(values)), values, strict=True))
        if REG_TARGET_HI in regs or REG_TARGET_LO in regs:
            if REG_TARGET_HI not in regs or REG_TARGET_LO not in regs:
                raise ValueError("target position needs both registers")
            raw = (regs.pop(REG_TARGET_HI) << 16) | regs.pop(REG_TARGET_LO)
            self.target_pulses = float(struct.unpack(">i", struct.pack(">I", raw))[0])
            self._apply_target()
        for reg, value in regs.items():
            if reg == REG_ENABLE:
                self.enabled = bool(value) and self.error == 0
                if self.enabled:
                    self._apply_target()
                else:
                    self._plant.hold_gripper()
            elif reg == REG_MODE:
                self.mode = value
            elif reg == REG_SPEED:
                self.speed_rpm = float(value)
                self._apply_target()
            elif reg == REG_RESET_ERR:
                if value:
                    self.error = 0
            elif reg == REG_ZERO:
                pass  # zero calibration: nothing to model
            else:
                raise KeyError(reg)

    def handle_rtu(self, pdu: bytes) -> bytes | None:
        """Answer one Modbus-RTU request (`slave, function, ...`); None when nobody answers on the bus."""
        if not self.link_ok or len(pdu) < 2 or pdu[0] != SLAVE_ID:
            return None
        self.frames_handled += 1
        slave, func = pdu[0], pdu[1]
        try:
            if func == 0x03 and len(pdu) == 6:
                addr, count = struct.unpack(">HH", pdu[2:6])
                if not 1 <= count <= 16:
                    raise ValueError("count")
                words = [self._read(a) for a in range(addr, addr + count)]
                return bytes([slave, func, 2 * count]) + struct.pack(f">{count}H", *words)
            if func == 0x06 and len(pdu) == 6:
                addr, value = struct.unpack(">HH", pdu[2:6])
                self._write(addr, [value])
                return bytes(pdu[:6])
            if func == 0x10 and len(pdu) >= 7:
                addr, count = struct.unpack(">HH", pdu[2:6])
                nbytes = pdu[6]
                if nbytes != 2 * count or len(pdu) != 7 + nbytes or count == 0:
                    raise ValueError("length")
                self._write(addr, list(struct.unpack(f">{count}H", pdu[7 : 7 + nbytes])))
                return bytes(pdu[:6])
            if func in (0x03, 0x06, 0x10):
                return bytes([slave, func | 0x80, EXC_ILLEGAL_VALUE])
            return bytes([slave, func | 0x80, EXC_ILLEGAL_FUNCTION])
        except KeyError:
            return bytes([slave, func | 0x80, EXC_ILLEGAL_ADDRESS])
        except ValueError:
            return bytes([slave, func | 0x80, EXC_ILLEGAL_VALUE])

    # --- tool board registers (127 / 128) ----------------------------------------------------------
    def read_tool_register(self, addr: int) -> int:
        """Register 128: the baud index at 0x0A0B; other addresses read back what was written (or 0)."""
        if addr == TOOL_REG_BAUD_READ:
            return self.tool_baud_index
        return int(self.other_tool_registers.get(addr, 0))

    def write_tool_register(self, addr: int, value: float) -> None:
        """Register 127: 0x1A0B stages a baud index, 0x0607 reboots the tool board (applies it)."""
        if addr == TOOL_REG_BAUD_WRITE:
            index = int(round(value))
            if not 0 <= index <= 12:
                raise ValueError("baud index")
            self._pending_baud_index = index
        elif addr == TOOL_REG_SOFT_REBOOT:
            if value:
                self.reboots += 1
                if self._pending_baud_index is not None:
                    self.tool_baud_index = self._pending_baud_index
                    self._pending_baud_index = None
                self.enabled = False
                self._plant.hold_gripper()
        else:
            self.other_tool_registers[addr] = value

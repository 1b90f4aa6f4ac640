"""The controller side of the xArm private protocol: state machine, modes, commands and faults.

No sockets here: `handle(register, params)` answers one decoded request with (status byte, data) and
`tick(dt)` advances motion. `LoopbackController` puts this behind TCP. Semantics follow
docs/xarm_protocol.md §1-§2 and §8 (a documented simplification of the real controller):

* `motion_enable` -> enabled, state 4; `set_mode` -> new mode, state 5 (4 if stopped / not enabled);
  `set_state(0)` -> ready (2 sleeping, 1 moving) if enabled and error-free; `set_state(3)` pauses,
  `set_state(4)` stops and clears the command queue, `set_state(6)` decelerates (state 6), then 4.
* `clean_error` clears the error; the state stays 4. Any error stops the arm, state 4, mode 0.
* Reply status: 0x10 when state is 4/5 or not enabled, 0x20 with a warning, 0x40 with an error,
  0x08 for a rejected request (plus warning 12 "parameter error" / 13 "instruction does not exist").
* Mode 0 queues joint moves (synchronised trapezoids); mode 6 replans to the newest target;
  mode 1 servo_j tracks the newest target at the maximum joint speed; mode 4 tracks joint velocities
  (optionally for `duration` seconds); mode 2 is free drive (`guide_to` moves the arm by "hand").
* Faults: a servo_j target whose implied speed (largest joint jump / `c24_reference_period_s`)
  exceeds `c24_speed_limit` raises C24; targets outside the joint limits raise C23; collisions (C31)
  and any other code are injected through the API.
"""

from __future__ import annotations

import math
import struct
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from evo1_ros.sim.loopback_config import LoopbackConfig
from evo1_ros.sim.plant import JointPlant
from evo1_ros.sim.xarm6_fk import matrix_to_axis_angle, tcp_pose
from evo1_ros.sim.xarm_gripper import HOST_ID, XArmGripperModel, pulses_to_rad
from evo1_ros.sim.xarm_protocol import ErrorCode, Mode, Reg, State, Status, WarnCode, fp32_le, unpack_fp32_le
from evo1_ros.sim.xarm_report import ArmSnapshot

ALL_JOINTS_MASK = 0x3F  # joints 1..6 of an xArm6
_MAX_SERVO_ACC_CAP = 20.0  # rad/s², the SDK's joint acceleration clamp


class ParamError(Exception):
    """A request whose parameters cannot be decoded or are out of range."""


@dataclass
class _QueuedMove:
    q: np.ndarray
    speed: float
    acc: float


class ArmController:
    """Thread-safe model of the xArm controller; `lock` guards every access to it and to the plant."""

    def __init__(self, config: LoopbackConfig, plant: JointPlant) -> None:
        self.cfg = config
        self.plant = plant
        self.lock = threading.RLock()
        self.gripper = XArmGripperModel(plant, config.gripper)
        self.lower = np.asarray(config.joint_lower, dtype=float)
        self.upper = np.asarray(config.joint_upper, dtype=float)
        self.state = State.STOPPED
        self.mode = Mode.POSITION
        self.error = 0
        self.warn = 0
        self.enable_mask = 0
        self.collision_sensitivity = int(config.collision_sensitivity)
        self.teach_sensitivity = int(config.teach_sensitivity)
        self.tcp_offset = [0.0] * 6
        self.tcp_load = [0.0] * 4
        self.joint_max_acc = float(config.max_joint_acc)
        self.queue: deque[_QueuedMove] = deque()
        self._active_move: _QueuedMove | None = None
        self.servo_target: np.ndarray | None = None
        self.velocity_command = np.zeros(6)
        self._velocity_deadline: float | None = None
        self.time = 0.0  # simulated seconds since start
        self.report_counter = 0
        self.counters: Counter[str] = Counter()
        self.register_counts: Counter[int] = Counter()
        self.error_history: list[int] = []
        self.feedback_type = 0
        self._fault_listeners: list[Callable[[int], None]] = []
        plant.reset(config.initial_joints, pulses_to_rad(config.gripper.initial_pulses))
        self._handlers: dict[int, Callable[[bytes], bytes]] = {
            Reg.GET_VERSION: self._get_version,
            Reg.GET_ROBOT_SN: self._get_robot_sn,
            Reg.MOTION_EN: self._motion_enable,
            Reg.SET_STATE: self._set_state,
            Reg.GET_STATE: lambda p: bytes([self.state]),
            Reg.GET_CMDNUM: lambda p: struct.pack(">H", self.cmdnum),
            Reg.GET_ERROR: lambda p: bytes([self.error & 0xFF, self.warn & 0xFF]),
            Reg.CLEAN_ERR: self._clean_error,
            Reg.CLEAN_WAR: self._clean_warn,
            Reg.SET_MODE: self._set_mode,
            Reg.MOVE_JOINT: self._move_joint,
            Reg.MOVE_HOME: self._move_home,
            Reg.MOVE_SERVOJ: self._move_servoj,
            Reg.SET_TCP_JERK: self._store_float("tcp_jerk"),
            Reg.SET_TCP_MAXACC: self._store_float("tcp_maxacc"),
            Reg.SET_JOINT_JERK: self._store_float("joint_jerk"),
            Reg.SET_JOINT_MAXACC: self._set_joint_maxacc,
            Reg.SET_TCP_OFFSET: self._set_tcp_offset,
            Reg.SET_LOAD_PARAM: self._set_tcp_load,
            Reg.SET_COLLIS_SENS: self._set_collision_sensitivity,
            Reg.SET_TEACH_SENS: self._set_teach_sensitivity,
            Reg.CLEAN_CONF: self._clean_conf,
            Reg.SAVE_CONF: lambda p: b"",
            Reg.GET_TCP_POSE: lambda p: fp32_le(self.pose()),
            Reg.GET_JOINT_POS: self._get_joint_pos,
            Reg.VC_SET_JOINTV: self._set_joint_velocity,
            Reg.RS485_RTU: self._rs485,
            Reg.TGPIO_W16B: self._tool_write,
            Reg.TGPIO_R16B: self._tool_read,
            Reg.FEEDBACK_CHECK: lambda p: b"",
            Reg.SET_FEEDBACK_TYPE: self._set_feedback_type,
        }

    # --- derived state ----------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """All six joints enabled."""
        return self.enable_mask & ALL_JOINTS_MASK == ALL_JOINTS_MASK

    @property
    def ready(self) -> bool:
        """Motion commands are executed (enabled, no error, state 1/2/3)."""
        return self.enabled and self.error == 0 and self.state in (State.MOVING, State.SLEEPING, State.PAUSED)

    @property
    def cmdnum(self) -> int:
        """Queued (mode 0) commands, including the one being executed."""
        return len(self.queue) + (1 if self._active_move is not None else 0)

    def status_byte(self) -> int:
        """Status bits of a reply, computed after the request took effect."""
        status = 0
        if self.state in (State.STOPPED, State.CONFIG_CHANGED) or not self.enabled:
            status |= Status.NOT_READY
        if self.warn:
            status |= Status.WARN
        if self.error:
            status |= Status.ERROR
        return status

    def pose(self) -> list[float]:
        """TCP pose (mm, rad) of the current joint positions."""
        return tcp_pose(self.plant.q, self.tcp_offset)[0]

    # --- request dispatch -------------------------------------------------------------------------
    def handle(self, register: int, params: bytes) -> tuple[int, bytes]:
        """Answer one request: (status byte, reply data)."""
        with self.lock:
            self.counters["requests"] += 1
            self.register_counts[register] += 1
            handler = self._handlers.get(register)
            if handler is None:
                self.counters["unknown_registers"] += 1
                self.warn = WarnCode.UNKNOWN_COMMAND
                return self.status_byte() | Status.INVALID, b""
            try:
                data = handler(params)
            except (ParamError, struct.error, ValueError, IndexError, OverflowError):
                self.counters["param_errors"] += 1
                self.warn = WarnCode.PARAM_ERROR
                return self.status_byte() | Status.INVALID, b""
            return self.status_byte(), data

    def _u8(self, params: bytes, index: int = 0) -> int:
        if len(params) <= index:
            raise ParamError("missing byte parameter")
        return params[index]

    def _floats(self, params: bytes, count: int) -> list[float]:
        if len(params) < 4 * count:
            raise ParamError(f"need {count} FP32 parameters")
        values = unpack_fp32_le(params, count)
        if not all(math.isfinite(v) for v in values):
            raise ParamError("non-finite parameter")
        return values

    # --- identification ---------------------------------------------------------------------------
    def _get_version(self, params: bytes) -> bytes:
        return self.cfg.version.encode("ascii")[:40].ljust(40, b"\0")

    def _get_robot_sn(self, params: bytes) -> bytes:
        text = f"{self.cfg.robot_sn}\0{self.cfg.control_box_sn}".encode("ascii")
        return text[:40].ljust(40, b"\0")

    # --- state machine ----------------------------------------------------------------------------
    def _stop_motion(self) -> None:
        self.queue.clear()
        self._active_move = None
        self.servo_target = None
        self.velocity_command = np.zeros(6)
        self._velocity_deadline = None
        self.plant.hold()

    def _motion_enable(self, params: bytes) -> bytes:
        axis, enable = self._u8(params, 0), self._u8(params, 1)
        if axis == 8:
            mask = ALL_JOINTS_MASK
        elif 1 <= axis <= 6:
            mask = 1 << (axis - 1)
        else:
            raise ParamError("axis")
        self.enable_mask = (self.enable_mask | mask) if enable else (self.enable_mask & ~mask)
        self._stop_motion()
        self.state = State.STOPPED
        return b""

    def _set_state(self, params: bytes) -> bytes:
        value = self._u8(params)
        if value == State.READY_CMD:
            if self.enabled and self.error == 0:
                if self.state != State.PAUSED:
                    self.servo_target = None  # a fresh start: servo jumps are judged from the arm
                self.state = State.MOVING if (self.plant.is_moving() or self.cmdnum) else State.SLEEPING
        elif value == State.PAUSED:
            if self.state in (State.MOVING, State.SLEEPING):
                self.state = State.PAUSED
                if self._active_move is not None:  # resume it from where the arm stops
                    self.queue.appendleft(self._active_move)
                    self._active_move = None
                self.plant.hold()
        elif value == State.STOPPED:
            self._stop_motion()
            self.state = State.STOPPED
        elif value == State.DECELERATING:
            self._stop_motion()
            self.state = State.DECELERATING if self.plant.is_moving() else State.STOPPED
        else:
            raise ParamError("state")
        return b""

    def _set_mode(self, params: bytes) -> bytes:
        mode = self._u8(params)
        if mode not in Mode.SUPPORTED:
            raise ParamError("mode")
        self.mode = mode
        self._stop_motion()
        if self.state != State.STOPPED and self.enabled and self.error == 0:
            self.state = State.CONFIG_CHANGED
        else:
            self.state = State.STOPPED
        return b""

    def _clean_error(self, params: bytes) -> bytes:
        self.error = 0
        return b""

    def _clean_warn(self, params: bytes) -> bytes:
        self.warn = 0
        return b""

    def _config_changed(self) -> None:
        if self.state in (State.MOVING, State.SLEEPING, State.PAUSED):
            self._stop_motion()
            self.state = State.CONFIG_CHANGED

    def raise_error(self, code: int) -> None:
        """Enter error `code`: stop, state 4, mode 0 (what the real controller does on any error)."""
        with self.lock:
            self._stop_motion()
            self.error = int(code)
            self.state = State.STOPPED
            self.mode = Mode.POSITION
            self.error_history.append(int(code))
            self.counters[f"error_{code}"] += 1
            for listener in list(self._fault_listeners):
                listener(int(code))

    def add_fault_listener(self, listener: Callable[[int], None]) -> None:
        """Call `listener(code)` whenever an error is raised (logging in the CLI)."""
        self._fault_listeners.append(listener)

    # --- motion commands --------------------------------------------------------------------------
    def _check_limits(self, q: np.ndarray) -> bool:
        if np.any(q < self.lower) or np.any(q > self.upper):
            self.raise_error(ErrorCode.JOINT_LIMIT)
            return False
        return True

    def _joint_move(self, q: np.ndarray, speed: float, acc: float, check_only: bool) -> bytes:
        if check_only:
            ok = bool(np.all(q >= self.lower) and np.all(q <= self.upper))
            return bytes([0, 0, 0 if ok else 1])
        self.counters["move_joint_received"] += 1
        speed = float(np.clip(speed, 1e-4, self.cfg.max_joint_speed))
        acc = float(np.clip(acc, 0.01, _MAX_SERVO_ACC_CAP))
        if not self.ready or self.mode not in (Mode.POSITION, Mode.JOINT_ONLINE):
            self.counters["move_joint_ignored"] += 1
            return b""
        if not self._check_limits(q):
            return b""
        if self.mode == Mode.JOINT_ONLINE:
            self.plant.set_position_target(q, speed, acc)
            if self.state == State.SLEEPING:
                self.state = State.MOVING
        else:
            if len(self.queue) >= self.cfg.max_cmd_queue:
                self.warn = WarnCode.QUEUE_FULL
                return b""
            self.queue.append(_QueuedMove(q, speed, acc))
            if self.state == State.SLEEPING:
                self.state = State.MOVING
        self.counters["move_joint_accepted"] += 1
        return b""

    def _move_joint(self, params: bytes) -> bytes:
        values = self._floats(params, 10)
        check_only = len(params) > 40 and params[40] > 0
        return self._joint_move(np.asarray(values[:6]), values[7], values[8], check_only)

    def _move_home(self, params: bytes) -> bytes:
        speed, acc, _ = self._floats(params, 3)
        check_only = len(params) > 12 and params[12] > 0
        return self._joint_move(np.zeros(6), speed, acc, check_only)

    def _move_servoj(self, params: bytes) -> bytes:
        values = self._floats(params, 10)
        q = np.asarray(values[:6])
        self.counters["servoj_received"] += 1
        if not self.ready or self.mode != Mode.SERVO or self.state == State.PAUSED:
            self.counters["servoj_ignored"] += 1
            return b""
        if not self._check_limits(q):
            return b""
        reference = self.servo_target if self.servo_target is not None else self.plant.q
        implied_speed = float(np.max(np.abs(q - reference))) / self.cfg.faults.c24_reference_period_s
        if implied_speed > self.cfg.faults.c24_speed_limit:
            self.counters["servoj_overspeed"] += 1
            self.raise_error(ErrorCode.OVER_SPEED)
            return b""
        self.servo_target = q.copy()
        self.plant.set_position_target(q, self.cfg.max_joint_speed, self.cfg.max_joint_acc)
        if self.state == State.SLEEPING:
            self.state = State.MOVING
        self.counters["servoj_accepted"] += 1
        return b""

    def _set_joint_velocity(self, params: bytes) -> bytes:
        values = self._floats(params, 7)
        self._u8(params, 28)  # sync flag: joints are independent here, so it changes nothing
        duration = unpack_fp32_le(params, 1, 29)[0] if len(params) >= 33 else -1.0
        self.counters["velocity_received"] += 1
        if not self.ready or self.mode != Mode.JOINT_VELOCITY or self.state == State.PAUSED:
            self.counters["velocity_ignored"] += 1
            return b""
        dq = np.clip(np.asarray(values[:6]), -self.cfg.max_joint_speed, self.cfg.max_joint_speed)
        self.velocity_command = dq
        self._velocity_deadline = self.time + duration if duration > 0 else None
        self.plant.set_velocity_target(dq, self.joint_max_acc)
        if self.state == State.SLEEPING and np.any(dq != 0.0):
            self.state = State.MOVING
        self.counters["velocity_accepted"] += 1
        return b""

    def guide_to(self, q: Sequence[float]) -> bool:
        """Free drive (mode 2): move the arm as a hand would; False unless in mode 2 and ready."""
        with self.lock:
            if self.mode != Mode.TEACH or not self.ready:
                return False
            target = np.asarray(q, dtype=float).reshape(6)
            self.plant.set_position_target(target, self.cfg.teach_speed, self.cfg.max_joint_acc)
            if self.state == State.SLEEPING:
                self.state = State.MOVING
            return True

    # --- settings ---------------------------------------------------------------------------------
    def _store_float(self, name: str) -> Callable[[bytes], bytes]:
        def store(params: bytes) -> bytes:
            setattr(self, name, self._floats(params, 1)[0])
            return b""

        return store

    def _set_joint_maxacc(self, params: bytes) -> bytes:
        acc = self._floats(params, 1)[0]
        if acc <= 0:
            raise ParamError("acc")
        self.joint_max_acc = min(acc, _MAX_SERVO_ACC_CAP)
        return b""

    def _set_tcp_offset(self, params: bytes) -> bytes:
        self.tcp_offset = self._floats(params, 6)
        self._config_changed()
        return b""

    def _set_tcp_load(self, params: bytes) -> bytes:
        self.tcp_load = self._floats(params, 4)
        self._config_changed()
        return b""

    def _set_collision_sensitivity(self, params: bytes) -> bytes:
        value = self._u8(params)
        if value > 5:
            raise ParamError("sensitivity")
        self.collision_sensitivity = value
        self._config_changed()
        return b""

    def _set_teach_sensitivity(self, params: bytes) -> bytes:
        value = self._u8(params)
        if not 1 <= value <= 5:
            raise ParamError("sensitivity")
        self.teach_sensitivity = value
        self._config_changed()
        return b""

    def _clean_conf(self, params: bytes) -> bytes:
        self.collision_sensitivity = int(self.cfg.collision_sensitivity)
        self.teach_sensitivity = int(self.cfg.teach_sensitivity)
        self.tcp_offset = [0.0] * 6
        self.tcp_load = [0.0] * 4
        self._config_changed()
        return b""

    def _set_feedback_type(self, params: bytes) -> bytes:
        self.feedback_type = self._u8(params)
        return b""

    # --- queries ----------------------------------------------------------------------------------
    def _get_joint_pos(self, params: bytes) -> bytes:
        q = [*self.plant.q.tolist(), 0.0]
        if not params:
            return fp32_le(q)
        num = params[0] & 0x0F
        if not 1 <= num <= 3:
            raise ParamError("num")
        rows = [q, [*self.plant.dq.tolist(), 0.0], [*self.plant.effort.tolist(), 0.0]][:num]
        return fp32_le([v for row in rows for v in row])

    # --- tool RS-485 ------------------------------------------------------------------------------
    def _rs485(self, params: bytes) -> bytes:
        host = self._u8(params)
        if host != HOST_ID:
            raise ParamError("host id")
        self.counters["gripper_frames"] += 1
        reply = self.gripper.handle_rtu(bytes(params[1:]))
        if reply is None:
            self.counters["rs485_no_answer"] += 1
            raise ParamError("no answer on the tool bus")
        return bytes([host]) + reply

    def _tool_write(self, params: bytes) -> bytes:
        if self._u8(params) != HOST_ID or len(params) < 7:
            raise ParamError("tool register write")
        addr = struct.unpack(">H", params[1:3])[0]
        value = unpack_fp32_le(params, 1, 3)[0]
        self.gripper.write_tool_register(addr, value)
        return b""

    def _tool_read(self, params: bytes) -> bytes:
        if self._u8(params) != HOST_ID or len(params) < 3:
            raise ParamError("tool register read")
        addr = struct.unpack(">H", params[1:3])[0]
        return struct.pack(">i", self.gripper.read_tool_register(addr))

    # --- simulation -------------------------------------------------------------------------------
    def _start_next_move(self) -> None:
        move = self.queue.popleft()
        q0 = self.plant.q
        delta = np.abs(move.q - q0)
        span = float(np.max(delta))
        # scale limits so that all joints start and finish together (synchronised P2P move)
        ratio = np.maximum(delta / span, 1e-6) if span > 0 else np.ones(6)
        self.plant.set_position_target(move.q, move.speed * ratio, move.acc * ratio)
        self._active_move = move

    def tick(self, dt: float) -> None:
        """Advance the controller and the plant by `dt` seconds."""
        with self.lock:
            self.time += dt
            if self._velocity_deadline is not None and self.time >= self._velocity_deadline:
                self._velocity_deadline = None
                self.velocity_command = np.zeros(6)
                self.plant.set_velocity_target(np.zeros(6), self.joint_max_acc)
            running = self.state in (State.MOVING, State.SLEEPING)
            if self.mode == Mode.POSITION and running:
                if self._active_move is not None and not self.plant.is_moving():
                    self._active_move = None
                if self._active_move is None and self.queue:
                    self._start_next_move()
            self.plant.step(dt)
            q = self.plant.q
            if self.error == 0 and (np.any(q < self.lower - 1e-3) or np.any(q > self.upper + 1e-3)):
                self.raise_error(ErrorCode.JOINT_LIMIT)
            moving = self.plant.is_moving()
            if self.state in (State.MOVING, State.SLEEPING):
                self.state = State.MOVING if (moving or self.cmdnum) else State.SLEEPING
            elif self.state == State.DECELERATING and not moving:
                self.state = State.STOPPED

    def snapshot(self) -> ArmSnapshot:
        """Capture what the report sockets send."""
        with self.lock:
            self.report_counter += 1
            q = self.plant.q
            dq = self.plant.dq
            pose, rot = tcp_pose(q, self.tcp_offset)
            eps = 1e-3
            pose_ahead, _ = tcp_pose(q + dq * eps, self.tcp_offset)
            tcp_speed = float(np.linalg.norm(np.subtract(pose_ahead[:3], pose[:3]))) / eps
            mask = self.enable_mask & 0x7F
            return ArmSnapshot(
                state=self.state,
                mode=self.mode,
                cmdnum=self.cmdnum,
                angles=[*q.tolist(), 0.0],
                pose=pose,
                torques=[*self.plant.effort.tolist(), 0.0],
                speeds=[*dq.tolist(), 0.0],
                tcp_speed=tcp_speed,
                brake_mask=mask,
                enable_mask=mask,
                error=self.error,
                warn=self.warn,
                collision_sensitivity=self.collision_sensitivity,
                teach_sensitivity=self.teach_sensitivity,
                version=self.cfg.version.split(",")[-1].strip(),
                counter=self.report_counter,
                axis_angle=matrix_to_axis_angle(rot).tolist(),
                tcp_offset=self.tcp_offset,
                tcp_load=self.tcp_load,
                joint_lower=[*self.lower.tolist(), 0.0],
                joint_upper=[*self.upper.tolist(), 0.0],
                max_joint_speed=self.cfg.max_joint_speed,
                max_joint_acc=self.cfg.max_joint_acc,
                currents=[*(self.plant.effort / 0.1).tolist(), 0.0],
            )

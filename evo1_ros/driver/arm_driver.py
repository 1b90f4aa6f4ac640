"""The xArm driver's behaviour without ROS: connection supervision, state machine, servo streaming.

Three threads share one `ServoStreamer` (the capped, JTC-semantics command generator):

* supervisor (10 Hz): connects and reconnects, brings the arm up, polls controller errors;
* streaming (`servo_rate`, 200 Hz default): steps the streamer and sends mode-1 `set_servo_angle_j`
  targets (or mode-6 `set_servo_angle` targets at `online_rate`);
* gripper (`rate_hz` of the gripper map): sends deduplicated, rate-limited gripper positions and reads
  the gripper back (RS-485 calls are slow, so they never delay a servo cycle).

States: DISCONNECTED → DISABLED → READY (streaming) ⇄ FREE_DRIVE; any controller error → FAULT, where
nothing is sent until `clear_error()`. After a reconnect or a recovery the streamer restarts from the
*measured* pose, so the arm never jumps; there is no zero-pose fallback anywhere.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from evo1_ros.control.gripper_command import GripperCommandFilter
from evo1_ros.control.limits import GripperPulseMap, JointLimits
from evo1_ros.control.servo_stream import ServoStreamer
from evo1_ros.control.trajectory import Trajectory, validate
from evo1_ros.driver.xarm_session import (
    MODE_FREE_DRIVE,
    MODE_ONLINE_JOINT,
    MODE_SERVO,
    DriverError,
    SessionConfig,
    XArmSession,
    describe_fault,
)

log = logging.getLogger("evo1_ros.arm_driver")

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 7))


class DriverState(str, Enum):
    DISCONNECTED = "DISCONNECTED"
    DISABLED = "DISABLED"
    READY = "READY"
    FREE_DRIVE = "FREE_DRIVE"
    FAULT = "FAULT"


class NotReadyError(RuntimeError):
    """A command that needs the arm streaming arrived in another state."""


@dataclass(frozen=True)
class DriverConfig:
    session: SessionConfig
    control_mode: str = "servo"  # "servo" (mode 1, streamed) or "online" (mode 6, controller replans)
    servo_rate: float = 200.0  # Hz, mode 1 stream
    online_rate: float = 50.0  # Hz, mode 6 targets
    keepalive_period: float = 0.1  # s, resend an unchanged servo target this often (error detection)
    # A late cycle (the thread was starved) advances the command by at most this many nominal
    # periods' worth of capped motion, so a stall never turns into a jump (C24 on a real arm).
    max_step_periods: float = 2.0
    error_poll_period: float = 0.2  # s
    reconnect_period: float = 1.0  # s
    auto_enable: bool = True
    home_position: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    home_speed_fraction: float = 0.5  # of max_velocity

    def __post_init__(self) -> None:
        if self.control_mode not in ("servo", "online"):
            raise ValueError(f"control_mode must be 'servo' or 'online', got {self.control_mode!r}")
        if not 1.0 <= self.servo_rate <= 250.0:
            raise ValueError(
                f"servo_rate must be within [1, 250] Hz (controller limit), got {self.servo_rate}"
            )
        if not 1.0 <= self.online_rate <= 250.0:
            raise ValueError(f"online_rate must be within [1, 250] Hz, got {self.online_rate}")
        if not 1.0 <= self.max_step_periods <= 10.0:
            raise ValueError(f"max_step_periods must be within [1, 10], got {self.max_step_periods}")
        if len(self.home_position) != 6 or not all(np.isfinite(self.home_position)):
            raise ValueError("home_position needs 6 finite joint angles (rad)")


@dataclass
class DriverStatus:
    state: DriverState
    fault: str
    connected: bool
    mode: int
    error_code: int
    warn_code: int
    servo_rate_hz: float
    cycles: int
    commands_sent: int
    send_failures: int
    trajectories_accepted: int
    trajectories_rejected: int
    last_rejection: str
    late_cycles: int  # cycles longer than max_step_periods periods (command slowed down, not jumped)
    periods: list[float] = field(default_factory=list)


class ArmDriver:
    """Drive one xArm6 (+ optional gripper) through `XArmSession`; thread-safe public methods."""

    def __init__(
        self,
        config: DriverConfig,
        limits: JointLimits,
        gripper_map: GripperPulseMap | None,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self.gripper_map = gripper_map
        names = list(ARM_JOINTS) + ([gripper_map.joint] if gripper_map else [])
        self.limits = limits.subset(names)
        self.session = XArmSession(config.session)
        self._event = on_event or (lambda level, text: getattr(log, level)(text))
        self._lock = threading.RLock()  # state, streamer
        self._op_lock = threading.Lock()  # serialises enable/recover/free-drive sequences
        self._state = DriverState.DISCONNECTED
        self._fault = ""
        self._err = self._warn = 0
        self._streamer: ServoStreamer | None = None
        self._gripper_filter = (
            GripperCommandFilter(gripper_map.epsilon_pulses, gripper_map.rate_hz) if gripper_map else None
        )
        self._gripper_rad: float | None = None
        self._free_drive_gripper: float | None = None  # gripper target (rad) while in free-drive
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._periods: deque[float] = deque(maxlen=4000)
        self._cycles = self._sent = self._send_failures = self._late = 0
        self._last_late_warning = -1e9
        self._accepted = self._rejected = 0
        self._last_rejection = ""
        self._command_listeners: list[Callable[[float, float, np.ndarray], None]] = []

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        # The streaming thread must get the interpreter within a fraction of its period even while
        # executor/report threads run Python code; the default 5 ms GIL switch interval is a full
        # 200 Hz period. 0.5 ms keeps the hand-over latency well below it.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        targets = [("supervisor", self._supervise), ("stream", self._stream)]
        if self.gripper_map is not None:
            targets.append(("gripper", self._gripper_loop))
        for name, fn in targets:
            thread = threading.Thread(target=fn, name=f"xarm-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def shutdown(self) -> None:
        """Stop streaming (the arm holds its last target) and close the connection."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=3)
        self.session.close()

    def add_command_listener(self, listener: Callable[[float, float, np.ndarray], None]) -> None:
        """Call `listener(now, dt, command)` in the streaming thread for every streamed command.

        For diagnostics and tests: it sees exactly what the streamer produced and the cycle time it
        was computed for (the real cycle time, or ``max_step_periods`` periods after a stall). It
        must be quick; it runs inside the servo cycle.
        """
        with self._lock:
            self._command_listeners.append(listener)

    # -- queries ------------------------------------------------------------------------------------
    @property
    def state(self) -> DriverState:
        return self._state

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.limits.names

    def joint_state(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Measured (positions, velocities) in `joint_names` order, or None while disconnected."""
        if not self.session.connected:
            return None
        try:
            q = self.session.joint_positions()
            dq = self.session.joint_velocities()
        except DriverError:
            return None
        if self.gripper_map is not None:
            if self._gripper_rad is None:
                return None
            q = np.append(q, self._gripper_rad)
            dq = np.append(dq, 0.0)
        return q, dq

    def commanded_positions(self) -> np.ndarray | None:
        with self._lock:
            return None if self._streamer is None else self._streamer.position

    def status(self) -> DriverStatus:
        with self._lock:
            periods = list(self._periods)
        rate = 1.0 / float(np.mean(periods[-200:])) if len(periods) > 10 else 0.0
        connected = self.session.connected
        return DriverStatus(
            state=self._state,
            fault=self._fault,
            connected=connected,
            mode=self.session.mode if connected else -1,
            error_code=self._err,
            warn_code=self._warn,
            servo_rate_hz=rate if self._state == DriverState.READY else 0.0,
            cycles=self._cycles,
            commands_sent=self._sent,
            send_failures=self._send_failures,
            trajectories_accepted=self._accepted,
            trajectories_rejected=self._rejected,
            last_rejection=self._last_rejection,
            late_cycles=self._late,
            periods=periods,
        )

    # -- commands -----------------------------------------------------------------------------------
    def submit(
        self,
        joint_names: list[str],
        times: list[float],
        positions: list[list[float]],
        velocities: list[list[float]] | None,
        start_time: float | None,
    ) -> Trajectory:
        """Validate and run a trajectory (JTC semantics); raises TrajectoryError/NotReadyError.

        `start_time` is on this driver's monotonic clock; None = now. A rejected trajectory changes
        nothing: the running one continues, or the arm keeps holding.
        """
        try:
            traj = validate(joint_names, times, positions, self.limits, velocities, required=())
        except ValueError as exc:
            self.reject(str(exc))
            raise
        with self._lock:
            gripper_only = self.gripper_map is not None and traj.joint_names == (self.gripper_map.joint,)
            if self._state == DriverState.FREE_DRIVE and gripper_only and not traj.empty:
                # Hand-guided demos still need the gripper: its final position goes straight to the
                # gripper loop (the arm joints are the operator's).
                self._free_drive_gripper = float(traj.positions[-1, 0])
                self._accepted += 1
                return traj
            if self._state != DriverState.READY or self._streamer is None:
                msg = f"driver is {self._state.value}, not READY" + (
                    f" ({self._fault})" if self._fault else ""
                )
                self.reject(msg)
                raise NotReadyError(msg)
            self._streamer.set_trajectory(traj, start_time, time.monotonic())
            self._accepted += 1
        return traj

    def reject(self, reason: str) -> None:
        """Count and log a rejected command (the arm keeps doing what it did)."""
        with self._lock:
            self._rejected += 1
            self._last_rejection = reason
        self._event("warning", f"trajectory rejected, holding: {reason}")

    def stop(self) -> None:
        """Brake at the acceleration cap and hold; keeps the arm enabled."""
        with self._lock:
            if self._streamer is not None:
                self._streamer.hold()

    def home(self) -> None:
        """Move to `home_position` at a fraction of the velocity cap (an explicit request, not a fallback)."""
        with self._lock:
            if self._state != DriverState.READY or self._streamer is None:
                raise NotReadyError(f"driver is {self._state.value}, not READY")
            start = self._streamer.position[:6]
        goal = np.asarray(self.config.home_position, dtype=float)
        vmax = np.asarray(self.limits.max_velocity[:6]) * self.config.home_speed_fraction
        duration = float(np.max(np.abs(goal - start) / vmax)) + 0.5
        self.submit(list(ARM_JOINTS), [duration], [goal.tolist()], None, None)

    def enable(self) -> None:
        with self._op_lock:
            if not self.session.connected:
                raise NotReadyError("not connected to the controller")
            if self._state == DriverState.FAULT:
                raise NotReadyError(f"controller fault ({self._fault}): call clear_error")
            self._bring_up(recover=False)

    def clear_error(self) -> None:
        """Recovery sequence; the streamer restarts from the measured pose (no jump)."""
        with self._op_lock:
            if not self.session.connected:
                raise NotReadyError("not connected to the controller")
            self._bring_up(recover=True)

    def disable(self) -> None:
        with self._op_lock:
            self._set_state(DriverState.DISABLED, "")
            if self.session.connected:
                self.session.disable()

    def free_drive(self, on: bool) -> None:
        """xArm mode 2 (hand guiding) on/off; leaving it resumes streaming from where the hand left it."""
        with self._op_lock:
            if not self.session.connected:
                raise NotReadyError("not connected to the controller")
            if self._state == DriverState.FAULT:
                raise NotReadyError(f"controller fault ({self._fault}): call clear_error")
            if on:
                with self._lock:
                    self._state = DriverState.FREE_DRIVE  # streaming thread stops sending first
                    self._free_drive_gripper = None
                self.session.set_mode(MODE_FREE_DRIVE)
                self._event("info", "free-drive (mode 2) on: the arm can be moved by hand")
            else:
                self._bring_up(recover=False)

    # -- internals ----------------------------------------------------------------------------------
    def _stream_mode(self) -> int:
        return MODE_SERVO if self.config.control_mode == "servo" else MODE_ONLINE_JOINT

    def _set_state(self, state: DriverState, fault: str) -> None:
        with self._lock:
            changed = state != self._state or fault != self._fault
            self._state, self._fault = state, fault
        if changed:
            level = "error" if state == DriverState.FAULT else "info"
            self._event(level, f"driver state {state.value}" + (f": {fault}" if fault else ""))

    def _bring_up(self, recover: bool) -> None:
        with self._lock:
            if self._state == DriverState.READY and not recover:
                return
            self._state = DriverState.DISABLED  # nothing is sent while the sequence runs
        try:
            if recover:
                self.session.recover(self._stream_mode())
            else:
                self.session.bring_up(self._stream_mode())
            if self.gripper_map is not None:
                self.session.gripper_setup()
                self._gripper_rad = self.gripper_map.pulses_to_rad(self.session.gripper_pulses())
            measured = self.session.read_joint_positions()
        except DriverError as exc:
            self._refresh_errors()
            self._set_state(DriverState.FAULT if self._err else DriverState.DISABLED, str(exc))
            raise
        if self.gripper_map is not None:
            measured = np.append(measured, self._gripper_rad)
        with self._lock:
            if self._streamer is None:
                self._streamer = ServoStreamer(self.limits, self.limits.clip(measured))
            else:
                self._streamer.reset(self.limits.clip(measured))
            if self._gripper_filter is not None:
                self._gripper_filter.reset()
            self._err = self._warn = 0
        self._set_state(DriverState.READY, "")

    def _refresh_errors(self) -> None:
        with contextlib.suppress(DriverError):
            self._err, self._warn = self.session.error_warn()

    def _fault_now(self, reason: str) -> None:
        self._refresh_errors()
        text = describe_fault(self._err, self._warn) if self._err else reason
        with self._lock:
            if self._streamer is not None:
                self._streamer.hold()
        self._set_state(DriverState.FAULT, f"{text}; streaming stopped, call clear_error")

    def _supervise(self) -> None:
        last_attempt = -1e9
        last_poll = 0.0
        while not self._stop.wait(0.1):
            now = time.monotonic()
            if not self.session.connected:
                if self._state != DriverState.DISCONNECTED:
                    self._set_state(
                        DriverState.DISCONNECTED, "connection to the controller lost; reconnecting"
                    )
                if now - last_attempt < self.config.reconnect_period:
                    continue
                last_attempt = now
                try:
                    self.session.connect()
                except DriverError as exc:
                    self._event("warning", str(exc))
                    continue
                self._set_state(DriverState.DISABLED, "")
                self._refresh_errors()
                if self._err:
                    self._fault_now("controller reports an error")
                elif self.config.auto_enable:
                    try:
                        self.enable()
                    except (DriverError, NotReadyError) as exc:
                        self._event("error", f"bring-up failed: {exc}")
                continue
            if now - last_poll >= self.config.error_poll_period:
                last_poll = now
                try:
                    self._err, self._warn = self.session.error_warn()
                except DriverError:
                    continue  # connection trouble: the next loop sees `connected` drop
                if self._err and self._state in (DriverState.READY, DriverState.FREE_DRIVE):
                    self._fault_now("controller error")

    def _stream(self) -> None:
        servo = self.config.control_mode == "servo"
        period = 1.0 / (self.config.servo_rate if servo else self.config.online_rate)
        vcap = float(np.max(self.limits.max_velocity[:6]))
        acap = float(np.max(self.limits.max_acceleration[:6]))
        max_step = self.config.max_step_periods * period
        last_cmd: np.ndarray | None = None
        last_send = 0.0
        prev = time.monotonic()
        deadline = prev + period
        while not self._stop.is_set():
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            deadline = deadline + period if now - deadline < period else now + period  # resync if late
            dt, prev = now - prev, now
            with self._lock:
                if self._state != DriverState.READY or self._streamer is None or not self.session.connected:
                    last_cmd = None
                    continue
                self._periods.append(dt)
                self._cycles += 1
                # The caps bound motion per step as max_velocity * dt: after a stall, dt is long and
                # one step could jump. Apply them over at most max_step; the command lags and then
                # catches up within the caps.
                step_dt = min(dt, max_step)
                if step_dt < dt:
                    self._late += 1
                cmd = self._streamer.step(now, step_dt)
                listeners = list(self._command_listeners)
            # Late cycles of a few periods are routine on a loaded PC (counted, not logged); a stall
            # of 10+ periods is worth a (rate-limited) warning.
            if dt > 10 * period and now - self._last_late_warning > 5.0:
                self._last_late_warning = now
                self._event(
                    "warning",
                    f"servo cycle took {dt * 1e3:.0f} ms (nominal {period * 1e3:.1f} ms; thread starved?):"
                    f" command slowed to stay within the caps ({self._late} late cycle(s) so far)",
                )
            for listener in listeners:
                listener(now, step_dt, cmd)
            arm_cmd = cmd[:6]
            changed = last_cmd is None or np.any(np.abs(arm_cmd - last_cmd) > 1e-7)
            if not changed and now - last_send < self.config.keepalive_period:
                continue
            try:
                code = (
                    self.session.servo_j(arm_cmd) if servo else self.session.move_online(arm_cmd, vcap, acap)
                )
            except Exception as exc:  # socket torn down mid-call
                code = -1
                self._event("warning", f"servo command failed: {exc}")
            if code == 0:
                self._sent += 1
                last_cmd, last_send = arm_cmd, now
                continue
            self._send_failures += 1
            if not self.session.connected or code in (-1, 3, 8):
                continue  # the supervisor reconnects
            with self._lock:
                # disable/free-drive change the state before they command the controller, so a
                # command refused because of them finds the state already changed: not a fault.
                expected = self._state != DriverState.READY
            if expected:
                continue
            self._fault_now(f"servo command returned {code}")

    def _gripper_loop(self) -> None:
        assert self.gripper_map is not None and self._gripper_filter is not None
        period = 1.0 / self.gripper_map.rate_hz
        while not self._stop.wait(period / 2):
            state = self._state
            if state not in (DriverState.READY, DriverState.FREE_DRIVE) or not self.session.connected:
                continue
            with self._lock:
                if state == DriverState.FREE_DRIVE:
                    target_rad = self._free_drive_gripper
                else:
                    target_rad = None if self._streamer is None else float(self._streamer.position[6])
            try:
                if target_rad is not None:
                    pulses = self._gripper_filter.update(
                        self.gripper_map.rad_to_pulses(target_rad), time.monotonic()
                    )
                    if pulses is not None:
                        code = self.session.set_gripper_pulses(pulses)
                        if code != 0:
                            self._event("warning", f"set_gripper_position returned {code}")
                self._gripper_rad = self.gripper_map.pulses_to_rad(self.session.gripper_pulses())
            except (DriverError, OSError) as exc:
                self._event("warning", f"gripper: {exc}")

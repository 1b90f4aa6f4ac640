"""The xArm driver's behaviour without ROS: connection supervision, state machine, servo streaming.

Three threads share one `ServoStreamer` (the capped, JTC-semantics command generator):

* supervisor (10 Hz): connects and reconnects, brings the arm up, polls controller errors;
* streaming (`servo_rate`, 200 Hz default): steps the streamer and sends mode-1 `set_servo_angle_j`
  targets (or mode-6 `set_servo_angle` targets at `online_rate`);
* gripper (`rate_hz` of the gripper map): sends deduplicated, rate-limited gripper positions and reads
  the gripper back every `gripper_poll_period`. RS-485 calls are slow and the SDK serialises all
  calls of one connection, so the gripper has its own SDK connection (`gripper_connection`) and never
  delays a servo command.

Streamer (`streamer`): "thread" runs the streaming loop as a thread of this process (it shares the
GIL with ROS callbacks); "process" hands it to `servo_process.ProcessStreamer`, a child process with
its own SDK command connection, deadline timing, optional SCHED_FIFO / mlockall / CPU affinity
(servo mode only; mode 6 always uses the thread). A monitor thread here turns its reports into
listener calls, counters, rest reports and fault handling, so every guarantee below holds for both.

States: DISCONNECTED → DISABLED → READY (streaming) ⇄ FREE_DRIVE; any controller error → FAULT, where
nothing is sent until `clear_error()`. After a reconnect or a recovery the streamer restarts from the
*measured* pose, so the arm never jumps; there is no zero-pose fallback anywhere. An arm found
outside the configured limits is not snapped into them: READY is refused with the reason.

Operator intent survives a dropped connection: the driver auto-enables only at its first connection;
after a drop it returns to what the operator last chose (DISABLED stays DISABLED, free-drive stays
free-drive, READY re-enables). `stop()` latches: trajectories are rejected until `resume()` or
`enable()`. Leaving the stream (disable, free-drive, shutdown) first brakes the command to rest within
the acceleration cap. The gripper target last commanded is kept across every re-sync, so a held
grasp is never loosened.
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
from typing import Any

import numpy as np

from evo1_ros.control.gripper_command import GripperCommandFilter
from evo1_ros.control.limits import GripperPulseMap, JointLimits
from evo1_ros.control.servo_stream import ServoStreamer
from evo1_ros.control.trajectory import DEFAULT_POSITION_TOLERANCE, Trajectory, validate
from evo1_ros.driver import servo_process
from evo1_ros.driver.realtime import RealtimeConfig
from evo1_ros.driver.servo_process import ProcessStreamer, StreamerProcessError
from evo1_ros.driver.xarm_session import (
    MODE_FREE_DRIVE,
    MODE_ONLINE_JOINT,
    MODE_SERVO,
    DriverError,
    SessionConfig,
    XArmSession,
    describe_fault,
)
from evo1_ros.parameters import nested, param, validate_fields

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


class Intent(str, Enum):
    """What the operator last asked for; restored after a dropped connection."""

    ENABLED = "ENABLED"
    DISABLED = "DISABLED"
    FREE_DRIVE = "FREE_DRIVE"


def stamp_problem(start_in: float, duration: float, max_ahead: float) -> str | None:
    """Why a trajectory starting `start_in` s from now (negative: in the past) must be rejected, or None.

    A trajectory whose last point already lies in the past would send the arm straight to that
    point, skipping every waypoint; one stamped far ahead usually means the sender's clock is ahead
    (the arm would keep moving long after the input stopped). Both are clock problems, so the text
    names the difference.
    """
    if start_in > max_ahead:
        return (
            f"header.stamp is {start_in:.3f} s ahead of the driver's clock (limit {max_ahead:.3f} s):"
            " is the sender's clock ahead? (check time sync / use_sim_time)"
        )
    if start_in + duration < 0.0:
        return (
            f"trajectory ended {-(start_in + duration):.3f} s ago (header.stamp {-start_in:.3f} s"
            " behind the driver's clock): stale message or the sender's clock is behind"
        )
    return None


def _home_position(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class DriverConfig:
    """Everything `ArmDriver` runs with; each field that is a node parameter is declared here once."""

    session: SessionConfig = nested(SessionConfig)
    control_mode: str = param(
        "servo", "servo (mode 1 stream) or online (mode 6)", choices=["servo", "online"]
    )
    servo_rate: float = param(200.0, "mode-1 stream rate (Hz)", min=1.0, max=250.0)
    online_rate: float = param(50.0, "mode-6 target rate (Hz)", min=1.0, max=250.0)
    keepalive_period: float = param(
        0.1, "resend an unchanged servo target after this many s", min=0.005, max=1.0
    )
    # A late cycle (the thread was starved) advances the command by at most this many nominal
    # periods' worth of capped motion, so a stall never turns into a jump (C24 on a real arm).
    max_step_periods: float = param(
        2.0,
        "a late servo cycle moves the command at most this many periods' worth (stall != jump)",
        min=1.0,
        max=10.0,
    )
    error_poll_period: float = param(0.2, "controller error poll period (s)", min=0.02, max=5.0)
    reconnect_period: float = param(1.0, "seconds between reconnection attempts", min=0.1, max=60.0)
    auto_enable: bool = param(True, "bring the arm up as soon as it is connected")
    gripper_poll_period: float = param(0.1, "seconds between gripper position reads", min=0.01, max=5.0)
    brake_timeout: float = param(
        1.0,
        "max wait for the command to brake to rest before leaving READY (s)",
        min=0.05,
        max=10.0,
    )
    home_position: tuple[float, ...] = param(
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        "home service target, joint1..joint6 (rad)",
        to_value=_home_position,
        to_param=list,
    )
    home_speed_fraction: float = param(0.5, "home speed as a fraction of max_velocity", min=0.05, max=1.0)
    streamer: str = param(
        "process",
        "thread: servo loop in this process; process: own process + SDK connection (servo mode)",
        choices=["thread", "process"],
    )
    realtime: RealtimeConfig = nested(RealtimeConfig)  # of the streamer process

    def __post_init__(self) -> None:
        validate_fields(self)
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
    stop_latched: bool = False  # `stop` was called: trajectories are rejected until resume/enable
    intent: str = ""  # what the operator last chose (Intent value), restored after a reconnect
    moving: bool = False  # the streamed command is moving
    reconnects: int = 0  # connections re-established (and the operator's state restored) after a drop
    gripper_polls: int = 0  # gripper position reads
    periods: list[float] = field(default_factory=list)
    send_times: list[float] = field(default_factory=list)  # s per servo SDK call (process streamer)


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
        self._stream_thread: threading.Thread | None = None
        self._periods: deque[float] = deque(maxlen=4000)
        self._send_times: deque[float] = deque(maxlen=4000)  # s per servo call (process streamer)
        self._cycles = self._sent = self._send_failures = self._late = 0
        self._last_late_warning = -1e9
        self._accepted = self._rejected = 0
        self._last_rejection = ""
        self._command_listeners: list[Callable[[float, float, np.ndarray], None]] = []
        self._trajectory_listeners: list[Callable[[Trajectory, float], None]] = []
        self._rest_listeners: list[Callable[[np.ndarray], None]] = []
        self._intent: Intent | None = None  # None until the first connection decided it
        self._latch = ""  # why trajectories are refused until resume/enable ("" = not latched)
        self._leaving = ""  # a state change waits for the brake: trajectories are refused meanwhile
        self._rest_pending = False  # a trajectory was interrupted: report where the command rests
        self._reconnects = 0
        self._gripper_polls = 0
        self._remote: ProcessStreamer | None = None
        if config.streamer == "process" and config.control_mode == "servo":
            self._remote = ProcessStreamer(
                self.limits,
                config.session.host,
                config.servo_rate,
                config.max_step_periods,
                config.keepalive_period,
                config.realtime,
                self._event,
            )
        elif config.streamer == "process":
            self._event("info", "online mode (mode 6) streams from the in-process thread (50 Hz)")
        self._connection_generation = 0
        self._remote_base = (0, 0, 0, 0)  # counters of earlier streamer processes (restarts)
        self._closing = False

    @property
    def streamer_pid(self) -> int | None:
        """Process id of the streamer process (None for the thread streamer)."""
        return None if self._remote is None else self._remote.pid

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        # The streaming thread must get the interpreter within a fraction of its period even while
        # executor/report threads run Python code; the default 5 ms GIL switch interval is a full
        # 200 Hz period. 0.5 ms keeps the hand-over latency well below it.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        if self._remote is not None:
            self._remote.start()
        stream = self._stream if self._remote is None else self._monitor
        targets = [("supervisor", self._supervise), ("stream", stream)]
        if self.gripper_map is not None:
            targets.append(("gripper", self._gripper_loop))
        for name, fn in targets:
            thread = threading.Thread(target=fn, name=f"xarm-{name}", daemon=True)
            if name == "stream":
                self._stream_thread = thread
            self._threads.append(thread)
            thread.start()

    def shutdown(self) -> None:
        """Brake the command to rest (bounded by `brake_timeout`), stop streaming, disconnect.

        The arm then holds its last target, which is a position at rest, not a point of a motion.
        """
        self._brake_to_rest("shutdown")  # not under _op_lock: a stuck bring-up must not block shutdown
        self._closing = True
        if self._remote is not None:
            self._remote.deactivate()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=3)
        if self._remote is not None:
            self._remote.close()
        self.session.close()

    def add_command_listener(self, listener: Callable[[float, float, np.ndarray], None]) -> None:
        """Call `listener(now, dt, command)` in the streaming thread for every streamed command.

        For diagnostics and tests: it sees exactly what the streamer produced and the cycle time it
        was computed for (the real cycle time, or ``max_step_periods`` periods after a stall). It
        must be quick: with the thread streamer it runs inside the servo cycle; with the process
        streamer it runs in the monitor thread, a few ms after the cycle, in cycle order.
        """
        with self._lock:
            self._command_listeners.append(listener)

    def add_trajectory_listener(self, listener: Callable[[Trajectory, float], None]) -> None:
        """Call `listener(trajectory, start)` for every trajectory accepted for execution.

        `start` is the resolved start time on the driver's monotonic clock. Called in the thread that
        submitted it, after the streamer took it; the node publishes it as `accepted_trajectory`.
        """
        with self._lock:
            self._trajectory_listeners.append(listener)

    def add_rest_listener(self, listener: Callable[[np.ndarray], None]) -> None:
        """Call `listener(position)` once the command stream comes to rest after an interruption.

        Interruptions: stop, an empty trajectory, fault, disable, free-drive, shutdown. `position`
        is the full command vector (joint_names order) where the stream rests.
        """
        with self._lock:
            self._rest_listeners.append(listener)

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
            send_times = list(self._send_times)
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
            stop_latched=bool(self._latch),
            intent=self._intent.value if self._intent is not None else "",
            moving=self._streamer is not None and self._streamer.is_moving,
            reconnects=self._reconnects,
            gripper_polls=self._gripper_polls,
            periods=periods,
            send_times=send_times,
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
        now = time.monotonic()
        accepted: tuple[Trajectory, float] | None = None
        msg = ""
        with self._lock:
            gripper_only = self.gripper_map is not None and traj.joint_names == (self.gripper_map.joint,)
            if self._latch:
                msg = self._latch
            elif self._leaving:
                msg = f"driver is leaving READY ({self._leaving})"
            elif self._state == DriverState.FREE_DRIVE and gripper_only and not traj.empty:
                # Hand-guided demos still need the gripper: its final position goes straight to the
                # gripper loop (the arm joints are the operator's); reported as that one point, now.
                final = traj.positions[-1].tolist()
                self._free_drive_gripper = float(final[0])
                self._accepted += 1
                one = validate(list(traj.joint_names), [0.0], [final], self.limits, required=())
                accepted = (one, now)
            elif self._state != DriverState.READY or self._streamer is None:
                msg = f"driver is {self._state.value}, not READY" + (
                    f" ({self._fault})" if self._fault else ""
                )
            else:
                if traj.empty:  # JTC "stop": brake and hold (not latched)
                    self._rest_pending = self._rest_pending or self._streamer.busy(now)
                else:
                    self._rest_pending = False  # the new trajectory says where the stream goes
                    accepted = (traj, now if start_time is None else float(start_time))
                self._streamer.set_trajectory(traj, start_time, now)
                self._accepted += 1
            if msg:
                self._count_rejection(msg)
            listeners = list(self._trajectory_listeners)
        if msg:
            self._event("warning", f"trajectory rejected, holding: {msg}")
            raise NotReadyError(msg)
        if accepted is not None:
            for listener in listeners:
                listener(*accepted)
        return traj

    def reject(self, reason: str) -> None:
        """Count and log a rejected command (the arm keeps doing what it did)."""
        self._count_rejection(reason)
        self._event("warning", f"trajectory rejected, holding: {reason}")

    def _count_rejection(self, reason: str) -> None:
        with self._lock:
            self._rejected += 1
            self._last_rejection = reason

    def stop(self) -> None:
        """Brake at the acceleration cap and hold, and latch: trajectories are rejected until
        `resume()` or `enable()` (a 30 Hz teleop stream must not cancel an operator's stop).
        Keeps the arm enabled."""
        with self._lock:
            self._latch = "stopped by the stop request: call resume (or enable) to accept trajectories"
            if self._streamer is not None:
                self._rest_pending = self._rest_pending or self._streamer.busy(time.monotonic())
                self._streamer.hold()
        self._event("warning", "stop: braking to rest; trajectories are refused until resume/enable")

    def resume(self) -> None:
        """Release the stop latch; the arm keeps holding until the next trajectory."""
        with self._lock:
            was = bool(self._latch)
            self._latch = ""
        if was:
            self._event("info", "resume: trajectories are accepted again")

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
        """Bring the arm up for streaming; also releases a stop latch (an explicit operator action).

        A refused enable (no connection, a fault) leaves the latch set: the operator asked for motion
        in a state where none could start, and a later clear_error or reconnect must not take that
        as permission to run whatever arrives next.
        """
        with self._op_lock:
            self._intent = Intent.ENABLED
            if not self.session.connected:
                raise NotReadyError("not connected to the controller")
            if self._state == DriverState.FAULT:
                raise NotReadyError(f"controller fault ({self._fault}): call clear_error")
            self.resume()
            self._bring_up(recover=False)

    def clear_error(self) -> None:
        """Recovery sequence; the streamer restarts from the measured pose (no jump).

        A stop latch stays set (only resume/enable release it)."""
        with self._op_lock:
            if not self.session.connected:
                raise NotReadyError("not connected to the controller")
            self._intent = Intent.ENABLED
            self._bring_up(recover=True)

    def disable(self) -> None:
        """Brake to rest, stop streaming and disable the motors; stays DISABLED across reconnects."""
        with self._op_lock:
            self._intent = Intent.DISABLED
            self._brake_to_rest("disable")
            self._set_state(DriverState.DISABLED, "")
            if self.session.connected:
                self.session.disable()

    def free_drive(self, on: bool) -> None:
        """xArm mode 2 (hand guiding) on/off; leaving it resumes streaming from where the hand left it.

        Entering it brakes a moving command to rest first; it stays on across reconnects."""
        with self._op_lock:
            if not self.session.connected:
                raise NotReadyError("not connected to the controller")
            if self._state == DriverState.FAULT:
                raise NotReadyError(f"controller fault ({self._fault}): call clear_error")
            if on:
                self._intent = Intent.FREE_DRIVE
                self._brake_to_rest("free-drive")
                self._enter_free_drive()
            else:
                self._intent = Intent.ENABLED
                self._bring_up(recover=False)

    # -- internals ----------------------------------------------------------------------------------
    def _stream_mode(self) -> int:
        return MODE_SERVO if self.config.control_mode == "servo" else MODE_ONLINE_JOINT

    def _set_state(self, state: DriverState, fault: str) -> None:
        with self._lock:
            changed = state != self._state or fault != self._fault
            self._state, self._fault = state, fault
        if state != DriverState.READY:
            self._pause_remote()
        if changed:
            level = "error" if state == DriverState.FAULT else "info"
            self._event(level, f"driver state {state.value}" + (f": {fault}" if fault else ""))

    def _pause_remote(self) -> None:
        """The streamer process stops sending (confirmed) before the controller's state changes."""
        if self._remote is not None and not self._remote.deactivate():
            self._event("warning", "servo streamer did not confirm the pause in time")

    def _brake_to_rest(self, why: str) -> None:
        """Hold and wait (at most `brake_timeout`) until the streamed command is at rest.

        Ending the stream mid-motion leaves the controller with a last target reached at full speed
        (a hard stop on the arm); braking within the acceleration cap first takes <= vmax/amax.
        Trajectories arriving meanwhile are refused.
        """
        with self._lock:
            if self._streamer is None or self._state != DriverState.READY:
                return
            if not self._streamer.busy(time.monotonic()):
                return
            self._streamer.hold()
            self._rest_pending = True
            self._leaving = why
        try:
            in_stream = threading.current_thread() is self._stream_thread  # a listener: cannot wait
            deadline = time.monotonic() + self.config.brake_timeout
            while not in_stream and time.monotonic() < deadline:
                with self._lock:
                    if not self._rest_pending or self._state != DriverState.READY:
                        break
                if not self.session.connected:
                    break
                time.sleep(0.002)
            with self._lock:
                moving = self._streamer.is_moving
            if moving and not in_stream:
                self._event(
                    "warning",
                    f"{why}: the command did not come to rest within {self.config.brake_timeout} s",
                )
            self._emit_rest_if_pending()
        finally:
            with self._lock:
                self._leaving = ""

    def _emit_rest_if_pending(self) -> None:
        """Report the position the command stream rests at, once per interruption."""
        with self._lock:
            if not self._rest_pending or self._streamer is None:
                return
            self._rest_pending = False
            position = self._streamer.position
            listeners = list(self._rest_listeners)
        for listener in listeners:
            listener(position)

    def _enter_free_drive(self) -> None:
        with self._lock:
            was_ready = self._state == DriverState.READY
            self._state = DriverState.FREE_DRIVE  # streaming thread stops sending first
            self._free_drive_gripper = None
        self._pause_remote()
        try:
            if was_ready:
                self.session.set_mode(MODE_FREE_DRIVE)
            else:  # from DISABLED or after a reconnect: the motors may be off
                self.session.bring_up(MODE_FREE_DRIVE)
            if self.gripper_map is not None:
                self.session.gripper_setup()
                self._gripper_rad = self.gripper_map.pulses_to_rad(self.session.gripper_pulses())
        except DriverError as exc:
            self._refresh_errors()
            self._set_state(DriverState.FAULT if self._err else DriverState.DISABLED, str(exc))
            raise
        self._event("info", "free-drive (mode 2) on: the arm can be moved by hand")

    def _outside_limits(self, measured: np.ndarray) -> str:
        """Which arm joints are outside the configured limits by more than the validator's tolerance."""
        lower, upper = self.limits.lower[:6], self.limits.upper[:6]
        out = [
            f"{name} at {q:.4f} rad (limits [{lo:.4f}, {hi:.4f}])"
            for name, q, lo, hi in zip(ARM_JOINTS, measured[:6], lower, upper, strict=True)
            if q < lo - DEFAULT_POSITION_TOLERANCE or q > hi + DEFAULT_POSITION_TOLERANCE
        ]
        return ", ".join(out)

    def _bring_up(self, recover: bool) -> None:
        with self._lock:
            if self._state == DriverState.READY and not recover:
                return
            # The gripper target last commanded survives the re-sync (a held grasp stays held).
            keep_gripper = self._free_drive_gripper
            if keep_gripper is None and self._streamer is not None and self.gripper_map is not None:
                keep_gripper = float(self._streamer.position[6])
            self._state = DriverState.DISABLED  # nothing is sent while the sequence runs
        self._pause_remote()
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
        outside = self._outside_limits(measured)
        if outside:
            # Starting the stream from a clipped pose would be a one-command jump; starting from the
            # measured pose would pull the arm back inside unasked. Let the operator decide.
            reason = (
                f"arm outside the configured joint limits: {outside}; move it inside in free-drive"
                " (or widen limits_file), then enable"
            )
            self._set_state(DriverState.DISABLED, reason)
            raise NotReadyError(reason)
        if self.gripper_map is not None:
            assert self._gripper_rad is not None
            gripper = self._gripper_rad if keep_gripper is None else keep_gripper
            lo, hi = float(self.limits.lower[6]), float(self.limits.upper[6])
            measured = np.append(measured, min(max(gripper, lo), hi))
        if self._remote is not None:
            try:
                if not self._remote.alive:
                    self._restart_remote()
                self._remote.reset(measured)  # confirmed by the process before it may stream
                self._remote.activate(self._connection_generation)
            except (StreamerProcessError, ValueError) as exc:
                self._set_state(DriverState.DISABLED, str(exc))
                raise DriverError(str(exc)) from exc
        with self._lock:
            # Within the tolerance an arm joint may be marginally outside: the streamer starts there
            # unclipped and never pushes it further out.
            if self._remote is not None:
                self._streamer = self._remote  # type: ignore[assignment]  # same interface
            elif self._streamer is None:
                self._streamer = ServoStreamer(self.limits, measured)
            else:
                self._streamer.reset(measured)
            self._free_drive_gripper = None
            self._rest_pending = False
            if self._gripper_filter is not None:
                self._gripper_filter.reset()
            self._err = self._warn = 0
        self._set_state(DriverState.READY, "")

    def _restore_after_connect(self, first: bool) -> None:
        """Return to the operator's last choice; auto-enable only at the very first connection."""
        intent = self._intent
        if intent is None:
            intent = Intent.ENABLED if self.config.auto_enable else Intent.DISABLED
            if not self.config.auto_enable:
                self._intent = Intent.DISABLED
        try:
            if intent == Intent.ENABLED and first:
                self.enable()
            elif intent == Intent.ENABLED:
                self._restore(lambda: self._bring_up(recover=False))
            elif intent == Intent.FREE_DRIVE:
                self._restore(self._enter_free_drive)
            else:
                self._event("info", "reconnected: staying DISABLED as the operator left it (call enable)")
        except (DriverError, NotReadyError) as exc:
            self._event("error", f"bring-up failed: {exc}")

    def _restore(self, sequence: Callable[[], None]) -> None:
        with self._op_lock:
            sequence()

    def _refresh_errors(self) -> None:
        with contextlib.suppress(DriverError):
            self._err, self._warn = self.session.error_warn()

    def _fault_now(self, reason: str) -> None:
        self._refresh_errors()
        text = describe_fault(self._err, self._warn) if self._err else reason
        with self._lock:
            if self._streamer is not None:
                self._rest_pending = self._rest_pending or self._streamer.busy(time.monotonic())
                self._streamer.hold()
        self._set_state(DriverState.FAULT, f"{text}; streaming stopped, call clear_error")
        self._emit_rest_if_pending()  # the stream ends here: the last command is where it rests

    def _supervise(self) -> None:
        last_attempt = -1e9
        last_poll = 0.0
        first = True
        while not self._stop.wait(0.1):
            now = time.monotonic()
            if not self.session.connected:
                if self._state != DriverState.DISCONNECTED:
                    with self._lock:  # a trajectory cut off by the drop ends where the command is
                        if self._streamer is not None and self._streamer.busy(now):
                            self._streamer.hold()
                            self._rest_pending = True
                    self._emit_rest_if_pending()
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
                self._connection_generation += 1  # the streamer process reopens its connection too
                self._set_state(DriverState.DISABLED, "")
                self._refresh_errors()
                if self._err:
                    self._fault_now("controller reports an error")
                else:
                    self._restore_after_connect(first)
                if not first:
                    with self._lock:
                        self._reconnects += 1
                first = False
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
            if self._rest_pending:
                with self._lock:
                    resting = self._streamer is not None and not self._streamer.is_moving
                if resting:
                    self._emit_rest_if_pending()
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

    def _restart_remote(self) -> None:
        """Start a fresh streamer process (after it died); its counters continue from here."""
        assert self._remote is not None
        self._remote_base = (self._cycles, self._sent, self._send_failures, self._late)
        self._event("warning", "starting a new servo streamer process")
        self._remote.start()

    def _monitor(self) -> None:
        """Process streamer: turn its reports into listener calls, counters, rest reports and faults.

        Runs here, out of the servo loop; listeners see every cycle in order, a few ms late.
        """
        remote = self._remote
        assert remote is not None
        while not self._stop.wait(0.004):
            self._monitor_once(remote)
        self._monitor_once(remote)

    def _monitor_once(self, remote: ProcessStreamer) -> None:
        for kind, value in remote.poll_events():
            if kind == "log":
                level, text = value  # type: ignore[misc]
                self._event(level, text)
            else:
                epoch, code = value  # type: ignore[misc]
                self._remote_send_failed(remote, epoch, code)
        snap = remote.snapshot()  # before draining: the drain then covers every cycle it reports
        entries = remote.drain()
        if entries:
            with self._lock:
                listeners = list(self._command_listeners)
                self._periods.extend(entry[1] for entry in entries)
            self._send_times.extend(entry[3] for entry in entries if entry[3] > 0.0)
            for now, _period, step_dt, _send, cmd in entries:
                for listener in listeners:
                    listener(now, step_dt, cmd)
        if snap is not None:
            base = self._remote_base
            self._cycles = base[0] + int(snap[servo_process.CYCLES])
            self._sent = base[1] + int(snap[servo_process.SENT])
            self._send_failures = base[2] + int(snap[servo_process.FAILURES])
            late = base[3] + int(snap[servo_process.LATE])
            self._late = late
            if self._rest_pending and remote.at_rest(snap):
                self._emit_rest_if_pending()
        if self._state != DriverState.READY or self._closing:
            return
        if not remote.alive:
            self._set_state(
                DriverState.FAULT,
                f"servo streamer process exited (code {remote.exit_code}); the arm holds its last"
                " target; call clear_error (starts a new one)",
            )
            self._emit_rest_if_pending()
        elif remote.connection_lost() and self.session.connected:
            self._event("warning", "servo streamer lost its controller connection: reconnecting")
            self.session.close()  # the supervisor reconnects both and restores the operator's state

    def _remote_send_failed(self, remote: ProcessStreamer, epoch: int, code: int) -> None:
        """A servo command the process sent was refused: the same decision as the thread's."""
        if epoch != remote.epoch or not self.session.connected or code in (-1, 3, 8):
            return  # an older activation, or connection trouble (the supervisor reconnects)
        with self._lock:
            expected = self._state != DriverState.READY  # disable/free-drive raced the command
        if not expected:
            self._fault_now(f"servo command returned {code}")

    def _gripper_loop(self) -> None:
        assert self.gripper_map is not None and self._gripper_filter is not None
        period = 1.0 / self.gripper_map.rate_hz
        last_poll = -1e9
        while not self._stop.wait(min(period / 2, self.config.gripper_poll_period)):
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
                now = time.monotonic()
                if now - last_poll >= self.config.gripper_poll_period:
                    last_poll = now
                    self._gripper_rad = self.gripper_map.pulses_to_rad(self.session.gripper_pulses())
                    self._gripper_polls += 1
            except (DriverError, OSError) as exc:
                self._event("warning", f"gripper: {exc}")

"""Thin, checked wrapper of `xarm.wrapper.XArmAPI` for the calls a streaming driver makes.

Every SDK call's return code is checked and turned into a `DriverError` naming the call and the
code in words, so a failed bring-up never leaves the driver believing the arm is ready. Angles are
radians throughout (`is_radian=True`).

The SDK serialises every call of one `XArmAPI` on its command socket, and a gripper call waits for
the tool RS-485 bus (milliseconds to tens of ms). With `gripper_connection="separate"` (default) the
gripper gets a second `XArmAPI` (command socket only, no report socket), so a slow tool bus never
delays a `set_servo_angle_j`. "shared" uses the arm's connection (for controllers that accept only
one client).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from evo1_ros.driver.error_codes import error_text, sdk_text, warn_text
from evo1_ros.parameters import param, validate_fields

log = logging.getLogger("evo1_ros.xarm_session")

MODE_POSITION = 0
MODE_SERVO = 1
MODE_FREE_DRIVE = 2
MODE_JOINT_VELOCITY = 4
MODE_ONLINE_JOINT = 6


class DriverError(RuntimeError):
    """An SDK call failed; the message names the call and the code."""


@dataclass(frozen=True)
class SessionConfig:
    host: str = param("127.0.0.1", "xArm controller IP address", name="robot_ip")
    joints: int = 6
    report_type: str = "real"  # 100 Hz joint angles (docs/xarm_protocol.md §1); errors are polled separately
    gripper: bool = param(True, "xArm Gripper present (adds drive_joint)")
    gripper_speed: float = param(2000.0, "gripper speed (r/min)", min=100.0, max=5000.0)
    gripper_connection: str = param(
        "separate",
        "separate: the gripper gets its own SDK connection (never delays the servo stream); shared",
        choices=["separate", "shared"],
    )
    baud_checkset: bool = param(True, "let the SDK check the tool RS-485 baud rate")
    collision_sensitivity: int = param(-1, "0..5 set at bring-up; -1 keeps the controller's", min=-1, max=5)
    disconnect_timeout: float = 3.0  # s to wait for the SDK's disconnect (see XArmSession.close)
    mode_settle_timeout: float = 1.0

    def __post_init__(self) -> None:
        validate_fields(self)


class XArmSession:
    """One connection to an xArm controller (real or the project's loopback controller)."""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self._arm = None
        self._tool = None  # the gripper's own connection (gripper_connection="separate")

    @property
    def _separate_tool(self) -> bool:
        return self.config.gripper and self.config.gripper_connection == "separate"

    # -- connection ------------------------------------------------------------------------------
    def connect(self) -> None:
        from xarm.wrapper import XArmAPI  # the real SDK; imported late so --help works without it

        self.close()
        try:
            arm = XArmAPI(
                self.config.host,
                is_radian=True,
                report_type=self.config.report_type,
                baud_checkset=self.config.baud_checkset,
                check_joint_limit=True,
            )
        except Exception as exc:  # the SDK raises plain Exceptions on socket errors
            raise DriverError(f"cannot connect to xArm at {self.config.host}: {exc}") from exc
        if not arm.connected:
            raise DriverError(f"cannot connect to xArm at {self.config.host} (controller unreachable?)")
        self._arm = arm
        if self._separate_tool:
            try:
                tool = XArmAPI(
                    self.config.host,
                    is_radian=True,
                    enable_report=False,  # the arm connection has the reports
                    baud_checkset=self.config.baud_checkset,
                )
            except Exception as exc:
                self.close()
                raise DriverError(f"cannot open the gripper connection to {self.config.host}: {exc}") from exc
            self._tool = tool
            if not tool.connected:
                self.close()
                raise DriverError(f"cannot open the gripper connection to {self.config.host}")
        log.info("connected to xArm at %s (version %s, SN %s)", self.config.host, arm.version, arm.sn)

    def close(self) -> None:
        """Disconnect; never blocks longer than ``config.disconnect_timeout``.

        The SDK's disconnect closes the sockets, then joins its reader threads. Its report reader can
        block forever on an internal queue (it checks ``qsize() > 1`` and then ``get()``s without a
        timeout while another thread drains the queue; seen on a loaded machine), and the join then
        never returns — which would hang the driver's reconnection and shutdown. The sockets are
        closed by then, so after the timeout the stuck SDK threads are left behind (daemon threads).
        """
        tool, self._tool = self._tool, None
        arm, self._arm = self._arm, None
        for api in (tool, arm):
            if api is not None:
                self._disconnect(api)

    def _disconnect(self, arm) -> None:
        done = threading.Event()

        def disconnect() -> None:
            try:
                arm.disconnect()
            except Exception as exc:  # already broken connection
                log.debug("disconnect: %s", exc)
            finally:
                done.set()

        threading.Thread(target=disconnect, name="xarm-disconnect", daemon=True).start()
        if not done.wait(self.config.disconnect_timeout):
            log.warning(
                "xArm SDK disconnect did not finish within %.1f s (an SDK reader thread is stuck); "
                "its sockets are closed, continuing without it",
                self.config.disconnect_timeout,
            )

    @property
    def connected(self) -> bool:
        """Both connections up (the arm's and, when separate, the gripper's)."""
        arm_ok = self._arm is not None and bool(self._arm.connected)
        return arm_ok and (not self._separate_tool or (self._tool is not None and bool(self._tool.connected)))

    @property
    def arm(self):
        if self._arm is None:
            raise DriverError("not connected")
        return self._arm

    @property
    def tool(self):
        """The connection gripper calls go through."""
        if not self._separate_tool:
            return self.arm
        if self._tool is None:
            raise DriverError("gripper connection not open")
        return self._tool

    def _check(self, name: str, code: int) -> None:
        if code != 0:
            raise DriverError(f"{name} failed: {sdk_text(code)}")

    # -- bring-up / recovery (docs/xarm_protocol.md §1) -------------------------------------------------------
    def bring_up(self, mode: int) -> None:
        """motion_enable → clean_warn → set_mode → set_state(0); waits until the report shows the mode."""
        arm = self.arm
        err, warn = self.error_warn()
        if err:
            raise DriverError(f"controller reports {error_text(err)}; call clear_error first")
        if warn:
            arm.clean_warn()
        self._check("motion_enable", arm.motion_enable(True))
        if self.config.collision_sensitivity >= 0:
            self._check(
                "set_collision_sensitivity", arm.set_collision_sensitivity(self.config.collision_sensitivity)
            )
        self.set_mode(mode)

    def recover(self, mode: int) -> None:
        """clean_error → clean_warn → motion_enable → set_mode → set_state(0)."""
        arm = self.arm
        self._check("clean_error", arm.clean_error())
        arm.clean_warn()
        err, _ = self.error_warn()
        if err:
            raise DriverError(f"error persists after clean_error: {error_text(err)}")
        self._check("motion_enable", arm.motion_enable(True))
        self.set_mode(mode)

    def set_mode(self, mode: int) -> None:
        arm = self.arm
        self._check(f"set_mode({mode})", arm.set_mode(mode))
        self._check("set_state(0)", arm.set_state(0))
        deadline = time.monotonic() + self.config.mode_settle_timeout
        while arm.mode != mode and time.monotonic() < deadline:
            time.sleep(0.01)
        if arm.mode != mode:
            raise DriverError(f"controller did not switch to mode {mode} (reports mode {arm.mode})")

    def disable(self) -> None:
        arm = self.arm
        arm.set_state(4)
        self._check("motion_enable(False)", arm.motion_enable(False))

    def stop(self) -> None:
        """set_state(4): stop and clear the controller's command buffer."""
        self._check("set_state(4)", self.arm.set_state(4))

    # -- state ------------------------------------------------------------------------------------
    def error_warn(self) -> tuple[int, int]:
        code, values = self.arm.get_err_warn_code()
        self._check("get_err_warn_code", code)
        return int(values[0]), int(values[1])

    def joint_positions(self) -> np.ndarray:
        """Arm joint angles (rad) from the report socket (no round trip)."""
        return np.asarray(self.arm.angles[: self.config.joints], dtype=float)

    def read_joint_positions(self) -> np.ndarray:
        """Arm joint angles (rad) queried from the controller (one round trip; use for re-sync)."""
        code, angles = self.arm.get_servo_angle(is_radian=True)
        self._check("get_servo_angle", code)
        q = np.asarray(angles[: self.config.joints], dtype=float)
        if q.shape != (self.config.joints,) or not np.all(np.isfinite(q)):
            raise DriverError(f"controller returned invalid joint angles {angles}")
        return q

    def joint_velocities(self) -> np.ndarray:
        return np.asarray(self.arm.realtime_joint_speeds[: self.config.joints], dtype=float)

    @property
    def mode(self) -> int:
        return int(self.arm.mode)

    @property
    def state(self) -> int:
        return int(self.arm.state)

    # -- motion -----------------------------------------------------------------------------------
    def servo_j(self, q: np.ndarray) -> int:
        """Mode 1 target; returns the SDK code (0 ok) so the streaming loop decides."""
        return int(self.arm.set_servo_angle_j(list(map(float, q)), is_radian=True))

    def move_online(self, q: np.ndarray, speed: float, acc: float) -> int:
        """Mode 6 target with explicit speed/acceleration caps (controller replans online)."""
        return int(
            self.arm.set_servo_angle(
                angle=list(map(float, q)), speed=speed, mvacc=acc, wait=False, is_radian=True
            )
        )

    # -- gripper ----------------------------------------------------------------------------------
    def gripper_setup(self) -> None:
        arm = self.tool
        self._check("set_gripper_mode(0)", arm.set_gripper_mode(0))
        self._check("set_gripper_enable(True)", arm.set_gripper_enable(True))
        self._check("set_gripper_speed", arm.set_gripper_speed(self.config.gripper_speed))

    def set_gripper_pulses(self, pulses: float) -> int:
        return int(self.tool.set_gripper_position(float(pulses), wait=False, wait_motion=False))

    def gripper_pulses(self) -> float:
        code, pos = self.tool.get_gripper_position()
        self._check("get_gripper_position", code)
        if pos is None:  # the SDK returns (0, None) when the connection closes mid-call
            raise DriverError("get_gripper_position returned no value")
        return float(pos)


def describe_fault(err: int, warn: int) -> str:
    parts = [error_text(err)]
    if warn:
        parts.append(warn_text(warn))
    return "; ".join(parts)

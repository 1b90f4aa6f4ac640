"""`xarm_driver` node: JointTrajectory in, xArm6 servo stream out, joint states and diagnostics back.

Thin ROS wiring around `evo1_ros.driver.arm_driver.ArmDriver`. Interfaces (namespace /xarm by
launch): subscribes `joint_trajectory`; publishes `joint_states` (100 Hz, joint1..joint6 +
drive_joint), `accepted_trajectory` (what the arm actually runs, see `_publish_accepted`),
`driver_status` (diagnostic_msgs/DiagnosticStatus) and `/diagnostics`; services `enable`, `disable`,
`clear_error`, `stop`, `resume`, `home` (std_srvs/Trigger), `free_drive` (std_srvs/SetBool).

`header.stamp` of an incoming trajectory is checked against this node's clock: a trajectory that
already ended, or one stamped more than `max_stamp_ahead` s ahead, is rejected with the clock
difference in the reason (a zero stamp means "start now").
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.duration import Duration as RosDuration
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from evo1_ros.control.limits import GripperPulseMap, JointLimits
from evo1_ros.control.trajectory import Trajectory
from evo1_ros.driver.arm_driver import ArmDriver, DriverConfig, DriverState, NotReadyError, stamp_problem
from evo1_ros.driver.error_codes import error_text, warn_text
from evo1_ros.driver.xarm_session import DriverError
from evo1_ros.parameters import nested, param, validate_fields
from evo1_ros.ros.node_runner import run_node
from evo1_ros.ros.params import declare_config
from evo1_ros.ros.qos import STATE, STATUS
from evo1_ros.ros.stamps import (
    seconds_to_duration,
    seconds_to_nanoseconds,
    stamp_to_nanoseconds,
    stamp_to_seconds,
)


@dataclass(frozen=True)
class XArmDriverParams:
    """The node's parameters: its own (publishing rates, limits file, stamp check) + `DriverConfig`'s."""

    joint_state_rate: float = param(100.0, "joint_states rate (Hz)", min=1.0, max=500.0)
    status_rate: float = param(2.0, "driver_status and /diagnostics rate (Hz)", min=0.1, max=50.0)
    limits_file: str = param("", "joint limits YAML; empty = config/xarm6_limits.yaml")
    max_stamp_ahead: float = param(
        0.5,
        "reject trajectories whose header.stamp is further ahead of this node's clock (s)",
        min=0.0,
        max=60.0,
    )
    driver: DriverConfig = nested(DriverConfig)

    def __post_init__(self) -> None:
        validate_fields(self)


PARAMETERS = XArmDriverParams


class XArmDriverNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("xarm_driver", **kwargs)
        p = declare_config(self, XArmDriverParams)
        config = p.driver
        limits = JointLimits.from_yaml(p.limits_file or None)
        gripper_map = GripperPulseMap.from_yaml(p.limits_file or None) if config.session.gripper else None
        self.max_stamp_ahead = float(p.max_stamp_ahead)
        # monotonic start -> the header.stamp it came from, while its submit runs (exact echo)
        self._stamps: dict[float, object] = {}
        self.driver = ArmDriver(config, limits, gripper_map, on_event=self._on_event)
        self._joint_names = list(self.driver.joint_names)

        services = ReentrantCallbackGroup()  # bring-up can take a second; don't block the timers
        self.joint_pub = self.create_publisher(JointState, "joint_states", STATE)
        self.status_pub = self.create_publisher(DiagnosticStatus, "driver_status", STATUS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", STATUS)
        # reliable, depth 10 (docs/architecture.md §3.3): the recorder must see every accepted trajectory
        self.accepted_pub = self.create_publisher(JointTrajectory, "accepted_trajectory", STATUS)
        self.driver.add_trajectory_listener(self._publish_accepted)
        self.driver.add_rest_listener(self._publish_rest)
        self.create_subscription(
            JointTrajectory,
            "joint_trajectory",
            self._on_trajectory,
            10,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.create_timer(
            1.0 / p.joint_state_rate,
            self._publish_joint_state,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.create_timer(
            1.0 / p.status_rate, self._publish_status, callback_group=MutuallyExclusiveCallbackGroup()
        )
        for name, fn in (
            ("enable", self.driver.enable),
            ("disable", self.driver.disable),
            ("clear_error", self.driver.clear_error),
            ("stop", self.driver.stop),
            ("resume", self.driver.resume),
            ("home", self.driver.home),
        ):
            self.create_service(Trigger, name, self._trigger(name, fn), callback_group=services)
        self.create_service(SetBool, "free_drive", self._on_free_drive, callback_group=services)
        self.driver.start()
        self.get_logger().info(
            f"xarm_driver: controller {config.session.host}, {config.control_mode} mode at "
            f"{config.servo_rate if config.control_mode == 'servo' else config.online_rate:.0f} Hz"
            f" ({config.streamer} streamer), joints {list(limits.names)}"
        )

    # -- callbacks ---------------------------------------------------------------------------------
    def _on_event(self, level: str, text: str) -> None:
        # rclpy binds a severity to each call site, so every level needs its own call.
        logger = self.get_logger()
        if level == "error":
            logger.error(text)
        elif level == "warning":
            logger.warning(text)
        else:
            logger.info(text)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        times = [stamp_to_seconds(pt.time_from_start) for pt in msg.points]
        positions = [list(pt.positions) for pt in msg.points]
        with_vel = msg.points and all(len(pt.velocities) for pt in msg.points)
        velocities = [list(pt.velocities) for pt in msg.points] if with_vel else None
        if msg.points and not with_vel and any(len(pt.velocities) for pt in msg.points):
            self.driver.reject("velocities given for some points only")
            return
        start = None
        stamp_ns = stamp_to_nanoseconds(msg.header.stamp)
        if stamp_ns and msg.points:  # empty = JTC stop: honoured whatever its stamp
            start_in = (stamp_ns - self.get_clock().now().nanoseconds) * 1e-9
            problem = stamp_problem(start_in, max(times, default=0.0), self.max_stamp_ahead)
            if problem is not None:
                self.driver.reject(problem)
                return
            start = time.monotonic() + start_in
            self._stamps[start] = msg.header.stamp
        # A rejection is logged and counted by the driver; the arm keeps holding or running as before.
        try:
            with contextlib.suppress(ValueError, NotReadyError):
                self.driver.submit(list(msg.joint_names), times, positions, velocities, start)
        finally:
            if start is not None:
                self._stamps.pop(start, None)

    def _publish_accepted(self, traj: Trajectory, start: float) -> None:
        """docs/architecture.md §3.3 (1): an accepted trajectory exactly as it runs; stamp = its ROS-time start."""
        if not self.context.ok():
            return  # shutting down (SIGINT): nobody can receive it any more
        msg = JointTrajectory()
        exact = self._stamps.get(start)
        if exact is not None:
            msg.header.stamp = exact
        else:
            offset = RosDuration(nanoseconds=seconds_to_nanoseconds(start - time.monotonic()))
            msg.header.stamp = (self.get_clock().now() + offset).to_msg()
        msg.joint_names = list(traj.joint_names)
        for k, t in enumerate(traj.times):
            pt = JointTrajectoryPoint()
            pt.positions = traj.positions[k].tolist()
            if traj.velocities is not None:
                pt.velocities = traj.velocities[k].tolist()
            pt.time_from_start = seconds_to_duration(float(t))
            msg.points.append(pt)
        self.accepted_pub.publish(msg)

    def _publish_rest(self, position: np.ndarray) -> None:
        """docs/architecture.md §3.3 (2): the stream stopped early; one point where the command came to rest."""
        if not self.context.ok():
            return  # shutting down (SIGINT): the context is gone, publishing would raise
        msg = JointTrajectory()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.joint_names = list(self.driver.joint_names)
        msg.points = [JointTrajectoryPoint(positions=position.tolist(), time_from_start=Duration())]
        self.accepted_pub.publish(msg)

    def _publish_joint_state(self) -> None:
        state = self.driver.joint_state()
        if state is None:
            return
        q, dq = state
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = self._joint_names  # built once; the arrays go straight from the latest report
        msg.position = q.tolist()
        msg.velocity = dq.tolist()
        self.joint_pub.publish(msg)

    def _publish_status(self) -> None:
        st = self.driver.status()
        level = {
            DriverState.READY: DiagnosticStatus.OK,
            DriverState.DISABLED: DiagnosticStatus.WARN,
            DriverState.FREE_DRIVE: DiagnosticStatus.WARN,
            DriverState.DISCONNECTED: DiagnosticStatus.ERROR,
            DriverState.FAULT: DiagnosticStatus.ERROR,
        }[st.state]
        msg = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: xArm6",
            hardware_id=f"xarm@{self.driver.config.session.host}",
            message=st.state.value
            + (f": {st.fault}" if st.fault else "")
            + ("; stopped: trajectories refused until resume (or enable)" if st.stop_latched else ""),
        )
        values = {
            "state": st.state.value,
            "connected": str(st.connected).lower(),
            "mode": str(st.mode),
            "error": error_text(st.error_code),
            "warning": warn_text(st.warn_code),
            "servo_rate_hz": f"{st.servo_rate_hz:.1f}",
            "commands_sent": str(st.commands_sent),
            "send_failures": str(st.send_failures),
            "late_cycles": str(st.late_cycles),
            "trajectories_accepted": str(st.trajectories_accepted),
            "trajectories_rejected": str(st.trajectories_rejected),
            "last_rejection": st.last_rejection,
            "stop_latched": str(st.stop_latched).lower(),
            "intent": st.intent,
            "reconnects": str(st.reconnects),
        }
        msg.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        self.status_pub.publish(msg)
        array = DiagnosticArray(status=[msg])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def _trigger(self, name: str, fn: Callable[[], None]) -> Callable:
        def handle(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            try:
                fn()
            except (DriverError, NotReadyError, ValueError) as exc:
                response.success, response.message = False, f"{name} failed: {exc}"
                self.get_logger().warning(response.message)
            else:
                response.success, response.message = True, f"{name}: driver {self.driver.state.value}"
            return response

        return handle

    def _on_free_drive(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        return self._trigger("free_drive", lambda: self.driver.free_drive(bool(request.data)))(
            request, response
        )

    def destroy_node(self) -> None:
        """Stop streaming (the arm holds its last target) and disconnect, then destroy the node."""
        self.get_logger().info("xarm_driver: shutting down; the arm holds its last target")
        self.driver.shutdown()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(XArmDriverNode, "xarm_driver", args=args)


if __name__ == "__main__":
    sys.exit(main())

"""ROS 2 node `teleop`: SpaceMouse / joystick / keyboard end-effector jogging of the xArm6.

Inputs: a geometry_msgs/Twist topic (spacenav ``/spacenav/twist`` or teleop_twist_joy ``/cmd_vel``),
sensor_msgs/Joy buttons (gripper toggle, free-drive toggle, recorder episode start/save/discard) and,
with ``--keyboard``, jog keys from the terminal. Output: a one-point JointTrajectory (six arm joints,
plus drive_joint unless ``gripper`` is false) ``horizon`` s ahead at ``rate`` Hz on
``/xarm/joint_trajectory``, and the gripper target on ``~/gripper``. The command timer and the twist
dead-man run on the steady (monotonic) clock, so a jumping ROS clock (sim time) cannot keep a stale
twist alive or stall the commands. The maths is in evo1_ros.control.teleop; this file only wires ROS
to it.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from geometry_msgs.msg import Twist
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Float64
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from evo1_msgs.srv import StartEpisode
from evo1_ros.control.kinematics import TCP_LINK, SerialChain
from evo1_ros.control.limits import ARM_JOINTS, GRIPPER_JOINT, JointLimits
from evo1_ros.control.teleop import (
    KEY_FREE_DRIVE,
    KEY_GRIPPER,
    KEY_QUIT,
    KEY_STOP,
    KEYBOARD_HELP,
    ArmJogger,
    ButtonEdges,
    Gripper,
    JogSettings,
    TwistHold,
    key_twist,
)
from evo1_ros.parameters import ParameterError, nested, param, validate_fields
from evo1_ros.ros.node_runner import run_node
from evo1_ros.ros.params import declare_config
from evo1_ros.ros.qos import COMMAND, SENSOR, STATUS
from evo1_ros.ros.stamps import seconds_to_duration


@dataclass(frozen=True)
class TeleopNodeParams:
    """The teleop node's parameters, each declared once: its own (topics, files, buttons) and the jog
    settings it hands to `ArmJogger` (`JogSettings`, declared flat beside them)."""

    twist_topic: str = param(
        "/spacenav/twist", "Twist input (spacenav: /spacenav/twist, teleop_twist_joy: /cmd_vel)"
    )
    joy_topic: str = param("/joy", "Joy input for the buttons (spacenav: /spacenav/joy)")
    joint_states_topic: str = param("/xarm/joint_states", "measured joints (start of the jog reference)")
    trajectory_topic: str = param("/xarm/joint_trajectory", "where the commands go")
    jog: JogSettings = nested(JogSettings)
    twist_timeout: float = param(0.3, "s after the last twist before it counts as zero (hold)", min=0.01)
    tip_link: str = param(TCP_LINK, "link whose origin the twist moves (link_tcp: gripper centre)")
    urdf_file: str = param("", "URDF for the kinematics; '' = the package's xarm6_with_gripper.urdf")
    limits_file: str = param("", "joint limits YAML; '' = config/xarm6_limits.yaml")
    publish_when_idle: bool = param(True, "keep commanding the held position when no twist comes")
    gripper: bool = param(
        True, "command the gripper joint (drive_joint); false for a driver started with gripper:=false"
    )
    gripper_open: float = param(0.0, "drive_joint position when open (rad)")
    gripper_closed: float = param(0.85, "drive_joint position when closed (rad)")
    button_gripper: int = param(0, "Joy button toggling the gripper (-1 = none)", min=-1)
    button_start_episode: int = param(
        7, "Joy button calling the recorder's start_episode (-1 = none)", min=-1
    )
    button_save_episode: int = param(6, "Joy button calling the recorder's save_episode (-1 = none)", min=-1)
    button_discard_episode: int = param(
        1, "Joy button calling the recorder's discard_episode (-1 = none)", min=-1
    )
    button_free_drive: int = param(3, "Joy button toggling free-drive (xArm mode 2) (-1 = none)", min=-1)
    recorder: str = param("/recorder", "recorder node whose services the episode buttons call")
    task: str = param("", "task sent with start_episode ('' = the recorder's default task)")
    free_drive: bool = param(False, "switch the arm to free-drive at start-up")
    free_drive_service: str = param("/xarm/free_drive", "driver's std_srvs/SetBool free-drive service")
    keyboard_speed: float = param(
        0.5, "fraction of max_linear/max_angular a jog key commands", min=0.0, max=1.0
    )

    def __post_init__(self) -> None:
        validate_fields(self)


PARAMETERS = TeleopNodeParams


class TeleopNode(Node):
    """Twist / Joy / keyboard -> JointTrajectory (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("teleop", **kwargs)
        p: TeleopNodeParams = declare_config(self, PARAMETERS)
        self.p = p
        limits_all = JointLimits.from_yaml(p.limits_file or None)
        self.arm_limits = limits_all.subset(ARM_JOINTS)
        chain = SerialChain.from_urdf(p.urdf_file or None, tip=p.tip_link)
        if tuple(chain.joint_names) != ARM_JOINTS:
            raise ParameterError(
                f"tip_link '{p.tip_link}': chain joints {chain.joint_names}, expected {ARM_JOINTS}"
            )
        lo, hi = (
            limits_all.lower[limits_all.index(GRIPPER_JOINT)],
            limits_all.upper[limits_all.index(GRIPPER_JOINT)],
        )
        for name in ("gripper_open", "gripper_closed") if p.gripper else ():
            if not lo <= getattr(p, name) <= hi:
                raise ParameterError(
                    f"parameter '{name}'={getattr(p, name)} outside the drive_joint range [{lo}, {hi}]"
                )
        self.settings = p.jog
        self.jogger = ArmJogger(chain, self.arm_limits, self.settings)
        self.twist = TwistHold(p.twist_timeout)
        self.gripper = Gripper(p.gripper_open, p.gripper_closed)
        self.edges = ButtonEdges()
        self._lock = threading.Lock()
        self._measured: np.ndarray | None = None
        self._free_drive = False
        self._free_drive_pending: bool | None = None
        self._was_fresh = False

        self.traj_pub = self.create_publisher(JointTrajectory, p.trajectory_topic, COMMAND)
        self.gripper_pub = self.create_publisher(Float64, "~/gripper", STATUS)
        self.create_subscription(Twist, p.twist_topic, self._on_twist, SENSOR)
        self.create_subscription(Joy, p.joy_topic, self._on_joy, SENSOR)
        self.create_subscription(JointState, p.joint_states_topic, self._on_joint_state, SENSOR)
        clients = MutuallyExclusiveCallbackGroup()
        base = p.recorder.rstrip("/")
        self.start_cli = self.create_client(StartEpisode, f"{base}/start_episode", callback_group=clients)
        self.save_cli = self.create_client(Trigger, f"{base}/save_episode", callback_group=clients)
        self.discard_cli = self.create_client(Trigger, f"{base}/discard_episode", callback_group=clients)
        self.free_drive_cli = self.create_client(SetBool, p.free_drive_service, callback_group=clients)
        self._joint_names = [*ARM_JOINTS, GRIPPER_JOINT] if p.gripper else list(ARM_JOINTS)
        # steady clock: commands keep coming (holding) whatever the ROS clock does
        self.timer = self.create_timer(
            self.settings.period,
            self._on_timer,
            callback_group=MutuallyExclusiveCallbackGroup(),
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )
        self._startup_timer = None
        if p.free_drive:  # the driver may start after us: retry until its service answers
            self._startup_timer = self.create_timer(0.5, self._startup_free_drive, callback_group=clients)
        self.get_logger().info(
            f"teleop: twist {p.twist_topic} ({p.jog.frame} frame, <= {p.jog.max_linear} m/s, "
            f"{p.jog.max_angular} rad/s), joy {p.joy_topic}, commands {p.trajectory_topic} at "
            f"{p.jog.rate:.0f} Hz, {p.jog.horizon:.2f} s ahead"
            f"{'' if p.gripper else ', no gripper (arm joints only)'}"
        )

    # ------------------------------------------------------------------ inputs
    def _on_twist(self, msg: Twist) -> None:
        # stamped on the monotonic clock (TwistHold's default), never the ROS clock
        self.twist.set(
            [msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.x, msg.angular.y, msg.angular.z]
        )

    def _on_joint_state(self, msg: JointState) -> None:
        pos = dict(zip(msg.name, msg.position))
        if not all(j in pos for j in ARM_JOINTS):
            return
        with self._lock:
            self._measured = np.array([pos[j] for j in ARM_JOINTS], dtype=float)
            if GRIPPER_JOINT in pos:
                self.gripper.sync(pos[GRIPPER_JOINT])

    def _on_joy(self, msg: Joy) -> None:
        pressed = self.edges.update(msg.buttons)
        p = self.p
        if p.button_gripper in pressed:
            self.toggle_gripper()
        if p.button_free_drive in pressed:
            self.request_free_drive(not self._free_drive)
        if p.button_start_episode in pressed:
            self._call(self.start_cli, StartEpisode.Request(task=p.task), "start_episode")
        if p.button_save_episode in pressed:
            self._call(self.save_cli, Trigger.Request(), "save_episode")
        if p.button_discard_episode in pressed:
            self._call(self.discard_cli, Trigger.Request(), "discard_episode")

    def key(self, key: str) -> bool:
        """Handle one keyboard key; False when it asks to quit."""
        if key == KEY_QUIT:
            return False
        if key == KEY_GRIPPER:
            self.toggle_gripper()
        elif key == KEY_FREE_DRIVE:
            self.request_free_drive(not self._free_drive)
        elif key == KEY_STOP:
            self.twist.set([0.0] * 6)
        else:
            s = self.p.keyboard_speed
            jog = self.settings
            tw = key_twist(key, s * jog.max_linear, s * jog.max_angular)
            if tw is not None:
                # keyboard speeds are already in m/s: undo the device scaling applied later
                tw[:3] /= jog.linear_scale or 1.0
                tw[3:] /= jog.angular_scale or 1.0
                self.twist.set(tw)
        return True

    # ------------------------------------------------------------------ actions
    def toggle_gripper(self) -> None:
        if not self.p.gripper:
            self.get_logger().warning("gripper toggle ignored: teleop runs with gripper:=false")
            return
        with self._lock:
            target = self.gripper.toggle()
        self.get_logger().info(f"gripper -> {'closed' if self.gripper.closed else 'open'} ({target:.2f} rad)")

    def _startup_free_drive(self) -> None:
        if self._free_drive:
            self._startup_timer.cancel()
        elif self._free_drive_pending is None and self.free_drive_cli.service_is_ready():
            self.request_free_drive(True)

    def request_free_drive(self, enable: bool) -> None:
        """Ask the driver for free-drive on/off; commands pause while it is on."""
        if not self.free_drive_cli.service_is_ready():
            self.get_logger().error(
                f"{self.free_drive_cli.srv_name} is not available: is xarm_driver running?"
            )
            return
        self._free_drive_pending = enable
        future = self.free_drive_cli.call_async(SetBool.Request(data=enable))
        future.add_done_callback(lambda f, e=enable: self._free_drive_done(f, e))

    def _free_drive_done(self, future: Any, enable: bool) -> None:
        res = future.result()
        if res is not None and res.success:
            with self._lock:
                self._free_drive = enable
                self.jogger.reset()  # the arm moves by hand in free-drive: start again from where it is
            self.get_logger().info(f"free-drive {'on: move the arm by hand' if enable else 'off'}")
        else:
            why = res.message if res is not None else "no answer"
            self.get_logger().error(f"free-drive {'on' if enable else 'off'} failed: {why}")
        self._free_drive_pending = None

    def _call(self, client: Any, request: Any, what: str) -> None:
        if not client.service_is_ready():
            self.get_logger().error(f"{client.srv_name} is not available: is the recorder running?")
            return

        def done(f: Any) -> None:
            res = f.result()
            if res is None:
                self.get_logger().error(f"{what}: no answer")
            elif res.success:
                self.get_logger().info(f"{what}: {res.message}")
            else:
                self.get_logger().warning(f"{what} refused: {res.message}")

        client.call_async(request).add_done_callback(done)

    # ------------------------------------------------------------------ command timer
    def _on_timer(self) -> None:
        twist, fresh = self.twist.get()
        if self._was_fresh and not fresh:
            self.get_logger().info("twist input stopped (twist_timeout): holding position")
        self._was_fresh = fresh
        with self._lock:
            if self._free_drive:
                return
            step = self.jogger.step(twist, self._measured)
            grip = self.gripper.target
        if step is None:
            return  # no joint state yet
        if grip is None:
            grip = self.p.gripper_open
        if not fresh and not self.p.publish_when_idle:
            return
        msg = JointTrajectory()
        msg.joint_names = self._joint_names
        horizon = self.settings.horizon
        positions = step.target.tolist() + ([float(grip)] if self.p.gripper else [])
        msg.points = [
            JointTrajectoryPoint(
                positions=positions,
                time_from_start=seconds_to_duration(horizon),
            )
        ]
        self.traj_pub.publish(msg)
        if self.p.gripper:
            self.gripper_pub.publish(Float64(data=float(grip)))


def _read_keys(node: TeleopNode) -> None:
    """Feed terminal keys to the node (raw keys on a TTY, characters of lines otherwise).

    Quitting (the quit key, or the end of piped input) shuts the node's context down, which ends
    the spin in `run_node` like Ctrl-C does.
    """
    print(f"keyboard jog: {KEYBOARD_HELP}", flush=True)
    try:
        if not sys.stdin.isatty():
            for line in sys.stdin:
                if not all(node.key(ch) for ch in line.rstrip("\n")):
                    return
            return
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while node.context.ok():
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready and not node.key(os.read(fd, 1).decode(errors="ignore")):
                    return
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    finally:
        node.context.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    user = remove_ros_args(argv)[1:]
    keyboard = "--keyboard" in user
    unknown = [a for a in user if a != "--keyboard"]
    if unknown:
        print(
            f"teleop: unknown argument(s) {unknown}; usage: teleop [--keyboard] [--ros-args ...]",
            file=sys.stderr,
        )
        return 2

    def make_node() -> TeleopNode:
        node = TeleopNode()
        if keyboard:
            threading.Thread(target=_read_keys, args=(node,), daemon=True).start()
        return node

    return run_node(
        make_node,
        "teleop",
        args=argv,
        startup_errors=(ParameterError, ValueError, OSError),
        num_threads=3,
    )


if __name__ == "__main__":
    sys.exit(main())

"""ROS 2 node `sim`: the MuJoCo workcell with the loopback xArm controller inside, and its cameras.

The xArm driver node connects to `robot_ip` through the real xArm SDK, exactly as to a robot; the
loopback controller in this process moves the simulated arm (evo1_ros/sim/sim_world.py). This file
only wires ROS to it:

* publishes `/cameras/<name>/image_raw` (sensor_msgs/Image, rgb8, `image_width` x `image_height`,
  `camera_rate` Hz, rendered headless with EGL in a thread of its own);
* publishes `~/task_state` (std_msgs/String, JSON: task, seed, success, episode_time, success_time,
  object poses, gripper, grasp_point, holding, sim_time, dropped_time, camera_fps) at `task_state_rate`;
* serves `~/reset` (evo1_msgs/SetTask; `task` = "TASK SEED", "TASK", "SEED" or "" = same task,
  next seed): re-places the task's objects; the arm is the driver's and is never teleported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported (through evo1_ros.sim)

from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String

from evo1_msgs.srv import SetTask
from evo1_ros.parameters import ParameterError, nested, param, validate_fields
from evo1_ros.ros.image import numpy_to_image
from evo1_ros.ros.node_runner import run_node
from evo1_ros.ros.params import declare_config
from evo1_ros.ros.qos import SENSOR, STATUS
from evo1_ros.sim.loopback_config import LoopbackConfig, load_config
from evo1_ros.sim.sim_world import READY_JOINTS, SimSettings, SimWorld, parse_reset_request
from evo1_ros.sim.workcell_scene import CameraConfig, default_cameras

_BASE, _WRIST = default_cameras()


def _floats(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values]


def _joints(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class CameraPoses:
    """`camera.<name>.*`: where the scene's cameras are (base in the world frame, wrist in the gripper's).

    The defaults are the scene's own (`default_cameras`); `apply` puts the declared values into them.
    """

    base_pos: list[float] = param(
        _BASE.pos, "camera base position (m, world frame)", name="camera.base.pos", to_value=_floats
    )
    base_target: list[float] = param(
        _BASE.target,
        "camera base look-at target (m, world frame)",
        name="camera.base.target",
        to_value=_floats,
    )
    base_up: list[float] = param(_BASE.up, "camera base up vector", name="camera.base.up", to_value=_floats)
    base_fovy: float = param(_BASE.fovy, "camera base vertical field of view (deg)", name="camera.base.fovy")
    wrist_pos: list[float] = param(
        _WRIST.pos, "camera wrist position (m, gripper frame)", name="camera.wrist.pos", to_value=_floats
    )
    wrist_target: list[float] = param(
        _WRIST.target,
        "camera wrist look-at target (m, gripper frame)",
        name="camera.wrist.target",
        to_value=_floats,
    )
    wrist_up: list[float] = param(
        _WRIST.up, "camera wrist up vector", name="camera.wrist.up", to_value=_floats
    )
    wrist_fovy: float = param(
        _WRIST.fovy, "camera wrist vertical field of view (deg)", name="camera.wrist.fovy"
    )

    def __post_init__(self) -> None:
        validate_fields(self)

    def apply(self, cameras: Sequence[CameraConfig]) -> list[CameraConfig]:
        """`cameras` with the declared pose of each."""
        return [
            dataclasses.replace(
                cam,
                pos=list(getattr(self, f"{cam.name}_pos")),
                target=list(getattr(self, f"{cam.name}_target")),
                up=list(getattr(self, f"{cam.name}_up")),
                fovy=getattr(self, f"{cam.name}_fovy"),
            )
            for cam in cameras
        ]


@dataclass(frozen=True)
class SimNodeParams:
    """The node's parameters: its own (controller address and settings, cameras, rates) + `SimSettings`'s
    (task, seed, max_lag, `scene.*`, `regions.*`, `tolerances.*`) + the camera poses."""

    robot_ip: str = param("127.0.0.2", "127.x.y.z the loopback xArm controller binds ('' = any free one)")
    loopback_config: str = param(
        "", "controller YAML (config/xarm_loopback_controller.yaml layout); '' = defaults"
    )
    initial_joints: tuple[float, ...] = param(
        READY_JOINTS, "arm pose at start, joint1..joint6 (rad)", to_value=_joints, to_param=list
    )
    cameras: list[str] = param(["base", "wrist"], "cameras to publish (scene cameras: base, wrist)")
    camera_topic: str = param("/cameras/{name}/image_raw", "topic of each camera ({name} = camera)")
    frame_id: str = param("{name}_camera_optical_frame", "header.frame_id of each camera's images")
    image_width: int = param(224, "rendered width (px)", min=16, max=4096)
    image_height: int = param(224, "rendered height (px)", min=16, max=4096)
    camera_rate: float = param(15.0, "Hz at which all cameras are rendered and published", min=0.1, max=120.0)
    task_state_rate: float = param(10.0, "Hz of ~/task_state (also how often success is checked)", min=0.1)
    world: SimSettings = nested(SimSettings)
    camera_poses: CameraPoses = nested(CameraPoses)

    def __post_init__(self) -> None:
        validate_fields(self)
        if len(self.initial_joints) != 6:
            raise ParameterError("parameter 'initial_joints' needs 6 values (rad)")

    def settings(self) -> SimSettings:
        """The world's settings: `world` with the camera poses, a render buffer that fits the images,
        the controller settings (file, then `initial_joints`) and address."""
        scene = self.world.scene
        scene = dataclasses.replace(
            scene,
            cameras=self.camera_poses.apply(scene.cameras),
            max_render_size=max(scene.max_render_size, self.image_width, self.image_height),
        )
        loop = load_config(self.loopback_config) if self.loopback_config else LoopbackConfig()
        loop.initial_joints = list(self.initial_joints)
        return dataclasses.replace(self.world, scene=scene, loopback=loop, host=self.robot_ip or None)


PARAMETERS = SimNodeParams


class SimNode(Node):
    """The workcell simulation as a ROS node (cameras, task state, seeded resets)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sim", **kwargs)
        self.p = declare_config(self, PARAMETERS)
        settings = self.p.settings()
        self.world = SimWorld(settings)
        self.world.start()
        self._cams = list(self.p.cameras)
        unknown = sorted(set(self._cams) - set(self.world.workcell.camera_names))
        if unknown:
            self.world.stop()
            raise ParameterError(
                f"parameter 'cameras': unknown {unknown}; the scene has {self.world.workcell.camera_names}"
            )
        self._image_pubs = {
            name: self.create_publisher(Image, self.p.camera_topic.format(name=name), SENSOR)
            for name in self._cams
        }
        self._state_pub = self.create_publisher(String, "~/task_state", STATUS)
        self.create_service(SetTask, "~/reset", self._on_reset)
        self.create_timer(1.0 / self.p.task_state_rate, self._publish_state)
        self._stop = threading.Event()
        self._frames = 0
        self._fps = 0.0
        self.camera_error = ""
        self._camera_thread = threading.Thread(target=self._camera_loop, name="sim-cameras", daemon=True)
        self._camera_thread.start()
        self.get_logger().info(
            f"sim: xArm loopback controller on {self.world.host}; task {self.world.task.name} seed "
            f"{self.world.seed}; cameras {self._cams} at {self.p.image_width}x{self.p.image_height}, "
            f"{self.p.camera_rate} Hz"
        )

    # --- cameras ----------------------------------------------------------------------------------
    def _camera_loop(self) -> None:
        try:
            renderer = self.world.make_renderer(self.p.image_width, self.p.image_height)
        except Exception as exc:  # no OpenGL here: say how to fix it instead of dying silently
            self.camera_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(
                f"cannot render ({self.camera_error}); headless rendering needs MUJOCO_GL=egl (Mesa EGL) "
                "or MUJOCO_GL=osmesa with libosmesa6 installed"
            )
            return
        period = 1.0 / self.p.camera_rate
        next_frame = time.monotonic()
        window_start, window_frames = time.monotonic(), 0
        try:
            while not self._stop.is_set():
                stamp = self.get_clock().now().to_msg()
                _, images = renderer.render(self._cams)
                if not self.context.ok():
                    break  # Ctrl-C shut the context down before close() stopped this thread
                try:
                    for name, img in images.items():
                        frame = self.p.frame_id.format(name=name)
                        self._image_pubs[name].publish(numpy_to_image(img, "rgb8", stamp, frame))
                except _rclpy.RCLError:
                    if self.context.ok():
                        raise
                    break
                self._frames += 1
                window_frames += 1
                now = time.monotonic()
                if now - window_start >= 2.0:
                    self._fps = window_frames / (now - window_start)
                    window_start, window_frames = now, 0
                next_frame += period
                delay = next_frame - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_frame = time.monotonic()  # behind: render as fast as possible, no burst
        finally:
            renderer.close()

    # --- task state and resets --------------------------------------------------------------------
    def _state_message(self) -> String:
        state = self.world.status().as_dict()
        state["camera_fps"] = round(self._fps, 2)
        state["frames"] = self._frames
        state["host"] = self.world.host
        return String(data=json.dumps(state))

    def _publish_state(self) -> None:
        self._state_pub.publish(self._state_message())

    def _on_reset(self, request: SetTask.Request, response: SetTask.Response) -> SetTask.Response:
        try:
            task, seed = parse_reset_request(request.task)
        except ValueError as exc:
            response.success = False
            response.message = str(exc)
            return response
        name, used_seed = self.world.reset(task, seed)
        self._publish_state()
        response.success = True
        response.message = f"task={name} seed={used_seed}"
        self.get_logger().info(f"reset: {response.message}")
        return response

    def close(self) -> None:
        """Stop rendering and the controller (called by run_node before the executor stops)."""
        self._stop.set()
        self._camera_thread.join(timeout=5.0)
        self.world.stop()


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, "sim", args=args)


if __name__ == "__main__":
    sys.exit(main())

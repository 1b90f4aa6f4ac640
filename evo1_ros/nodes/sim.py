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
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported (through evo1_ros.sim)

from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String

from evo1_msgs.srv import SetTask
from evo1_ros.ros.image import numpy_to_image
from evo1_ros.ros.node_runner import run_node
from evo1_ros.ros.params import ParameterError, ParamSpec, declare_parameters
from evo1_ros.ros.qos import SENSOR, STATUS
from evo1_ros.sim.loopback_config import LoopbackConfig, load_config
from evo1_ros.sim.sim_world import READY_JOINTS, SimSettings, SimWorld, parse_reset_request
from evo1_ros.sim.tasks import TASK_NAMES, LayoutRegions, SuccessTolerances
from evo1_ros.sim.workcell_scene import CameraConfig, SceneConfig

PARAMS = [
    ParamSpec("robot_ip", "127.0.0.2", "127.x.y.z the loopback xArm controller binds ('' = any free one)"),
    ParamSpec(
        "loopback_config", "", "controller YAML (config/xarm_loopback_controller.yaml layout); '' = defaults"
    ),
    ParamSpec("initial_joints", list(READY_JOINTS), "arm pose at start, joint1..joint6 (rad)"),
    ParamSpec("task", "pick_place_can", "task laid out at start", choices=list(TASK_NAMES)),
    ParamSpec("seed", 0, "layout seed at start", min=0),
    ParamSpec("cameras", ["base", "wrist"], "cameras to publish (scene cameras: base, wrist)"),
    ParamSpec("camera_topic", "/cameras/{name}/image_raw", "topic of each camera ({name} = camera)"),
    ParamSpec("frame_id", "{name}_camera_optical_frame", "header.frame_id of each camera's images"),
    ParamSpec("image_width", 224, "rendered width (px)", min=16, max=4096),
    ParamSpec("image_height", 224, "rendered height (px)", min=16, max=4096),
    ParamSpec("camera_rate", 15.0, "Hz at which all cameras are rendered and published", min=0.1, max=120.0),
    ParamSpec("task_state_rate", 10.0, "Hz of ~/task_state (also how often success is checked)", min=0.1),
    ParamSpec("max_lag", 0.05, "s of physics at most per controller tick (the rest is dropped)", min=0.004),
]


def _setting_specs(prefix: str, obj: Any) -> list[ParamSpec]:
    """`prefix.field` parameters for the scalar and number-list fields of a settings dataclass."""
    specs = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
            value = [float(v) for v in value]
        elif not isinstance(value, (bool, int, float, str)):
            continue
        specs.append(ParamSpec(f"{prefix}.{f.name}", value, f"{type(obj).__name__}.{f.name} (evo1_ros/sim)"))
    return specs


def _camera_specs(cam: CameraConfig) -> list[ParamSpec]:
    return [
        ParamSpec(f"camera.{cam.name}.{f}", [float(v) for v in getattr(cam, f)], f"camera {cam.name} {f} (m)")
        for f in ("pos", "target", "up")
    ] + [
        ParamSpec(
            f"camera.{cam.name}.fovy", float(cam.fovy), f"camera {cam.name} vertical field of view (deg)"
        )
    ]


def _apply(node: Node, prefix: str, obj: Any) -> Any:
    values = {}
    for spec in _setting_specs(prefix, obj):
        values[spec.name.split(".", 1)[1]] = node.get_parameter(spec.name).value
    return dataclasses.replace(obj, **values)


class SimNode(Node):
    """The workcell simulation as a ROS node (cameras, task state, seeded resets)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sim", **kwargs)
        self.p = declare_parameters(self, PARAMS)
        defaults = SceneConfig()
        extra = _setting_specs("scene", defaults)
        extra += _setting_specs("regions", LayoutRegions()) + _setting_specs(
            "tolerances", SuccessTolerances()
        )
        for cam in defaults.cameras:
            extra += _camera_specs(cam)
        declare_parameters(self, extra)
        settings = self._settings(defaults)
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

    def _settings(self, defaults: SceneConfig) -> SimSettings:
        scene = _apply(self, "scene", defaults)
        cams = []
        for cam in defaults.cameras:
            values = {
                f: list(self.get_parameter(f"camera.{cam.name}.{f}").value) for f in ("pos", "target", "up")
            }
            values["fovy"] = self.get_parameter(f"camera.{cam.name}.fovy").value
            cams.append(dataclasses.replace(cam, **values))
        scene.cameras = cams
        scene.max_render_size = max(scene.max_render_size, self.p.image_width, self.p.image_height)
        loop = load_config(self.p.loopback_config) if self.p.loopback_config else LoopbackConfig()
        if len(self.p.initial_joints) != 6:
            raise ParameterError("parameter 'initial_joints' needs 6 values (rad)")
        loop.initial_joints = [float(v) for v in self.p.initial_joints]
        return SimSettings(
            task=self.p.task,
            seed=self.p.seed,
            scene=scene,
            regions=_apply(self, "regions", LayoutRegions()),
            tolerances=_apply(self, "tolerances", SuccessTolerances()),
            loopback=loop,
            host=self.p.robot_ip or None,
            max_lag=self.p.max_lag,
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

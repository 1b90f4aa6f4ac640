"""`SimWorld`: the workcell, its MuJoCo plant and the loopback xArm controller in one process.

The `sim` node (evo1_ros/nodes/sim.py) is a thin ROS shell around this class. The real xArm SDK - and
with it the project's driver node - connects to `world.host` exactly as it would to a robot, so every
command takes the real path (driver -> SDK -> TCP -> controller state machine -> plant), and the
arm moves in physics. The world itself never moves the arm: a reset only re-places the task's
objects, so the driver's idea of where the arm is can never be invalidated behind its back.

Cameras are rendered by a `SceneRenderer`, which must be created and used in one thread (the OpenGL
context belongs to the thread that made it); it reads a consistent copy of the physics state, so
rendering never blocks the physics for longer than a memory copy.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evo1_ros.parameters import nested, param, validate_fields
from evo1_ros.sim.loopback_config import LoopbackConfig
from evo1_ros.sim.loopback_controller import LoopbackController
from evo1_ros.sim.mujoco_plant import MujocoPlant
from evo1_ros.sim.tasks import TASK_NAMES, LayoutRegions, SuccessTolerances, Task, make_task

# mujoco comes through the scene module, which selects headless EGL before importing it
from evo1_ros.sim.workcell_scene import (
    BOX_FLOOR,
    SceneConfig,
    WorkcellModel,
    mujoco,
)

#: grasp point 0.30 m above the table, 0.30 m in front of the base, tool pointing down
READY_JOINTS: tuple[float, ...] = (0.0, -0.6406, -0.7074, 0.0, 1.3481, 0.0)


@dataclass
class SimSettings:
    """Everything a `SimWorld` is built from; the fields declared with `param`/`nested` are the sim
    node's parameters (the node sets `loopback` and `host` from its own)."""

    task: str = param("pick_place_can", "task laid out at start", choices=TASK_NAMES)
    seed: int = param(0, "layout seed at start (each ~/reset may give another)", min=0)
    scene: SceneConfig = nested(SceneConfig)
    regions: LayoutRegions = nested(LayoutRegions)
    tolerances: SuccessTolerances = nested(SuccessTolerances)
    loopback: LoopbackConfig = field(
        default_factory=lambda: LoopbackConfig(initial_joints=list(READY_JOINTS))
    )
    host: str | None = None  # 127.x.y.z for the controller; None = pick a free one
    max_lag: float = param(
        0.05, "s of physics at most per controller tick (the rest is dropped; see MujocoPlant)", min=0.004
    )

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass
class TaskStatus:
    """Progress of the current episode (what `~/task_state` publishes)."""

    task: str
    seed: int
    success: bool
    episode_time: float  # simulated s since the last reset
    success_time: float | None  # simulated s from reset to the first success seen, None so far
    objects: dict[str, list[float]]  # task objects: [x, y, z, qw, qx, qy, qz]
    gripper: float  # drive_joint rad
    grasp_point: list[float]
    holding: list[str]  # objects touching a finger pad
    sim_time: float
    dropped_time: float  # simulated time skipped because physics fell behind the wall clock
    scene: dict[str, float]  # object sizes a scripted expert needs (m)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return dataclasses.asdict(self)


class SimWorld:
    """Workcell + MuJoCo plant + loopback controller, with seeded task resets and success tracking."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.settings = settings or SimSettings()
        s = self.settings
        self.workcell = WorkcellModel(s.scene)
        loop = s.loopback.validate()
        self.plant = MujocoPlant(self.workcell, loop.max_joint_speed, loop.max_joint_acc, s.max_lag)
        self.controller = LoopbackController(host=s.host, config=loop, plant=self.plant)
        self._lock = threading.Lock()
        self._task: Task = make_task(s.task, s.scene, s.regions, s.tolerances)
        self._seed = int(s.seed)
        self._reset_time = 0.0
        self._success_time: float | None = None
        self.resets = 0
        sc = s.scene
        self._sizes = {
            "can_height": sc.can_height,
            "can_radius": sc.can_radius,
            "cup_height": sc.cup_height,
            "box_wall": sc.box_size[2],
            "box_floor": BOX_FLOOR,
            "hand_height": sc.hand_height,
        }
        self._apply()

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> SimWorld:
        """Start serving the xArm protocol (and so the physics clock)."""
        self.controller.start()
        return self

    def stop(self) -> None:
        """Stop the controller (closes the SDK connections)."""
        self.controller.stop()

    @property
    def host(self) -> str:
        """Address the xArm SDK / driver connects to."""
        return self.controller.host

    # --- episodes ---------------------------------------------------------------------------------
    @property
    def task(self) -> Task:
        """The current task."""
        return self._task

    @property
    def seed(self) -> int:
        """Seed of the current layout."""
        return self._seed

    def reset(self, task: str | None = None, seed: int | None = None) -> tuple[str, int]:
        """New episode: `task` (None = keep) laid out from `seed` (None = previous seed + 1)."""
        s = self.settings
        with self._lock:
            new_task = make_task(task, s.scene, s.regions, s.tolerances) if task else self._task
            self._task = new_task
            self._seed = int(seed) if seed is not None else self._seed + 1
            self._apply()
            self.resets += 1
            return self._task.name, self._seed

    def _apply(self) -> None:
        self.plant.place_objects(self._task.sample_layout(self._seed))
        self._reset_time = self.plant.sim_time
        self._success_time = None

    def status(self) -> TaskStatus:
        """Evaluate the success test now (the first success is latched with its time)."""
        with self._lock:
            state = self.plant.scene_state()
            success = bool(self._task.success(state))
            elapsed = state.time - self._reset_time
            if success and self._success_time is None:
                self._success_time = elapsed
            objects = {
                name: [*state.poses[name].pos.tolist(), *state.poses[name].quat.tolist()]
                for name in self._task.objects
            }
            return TaskStatus(
                task=self._task.name,
                seed=self._seed,
                success=success,
                episode_time=elapsed,
                success_time=self._success_time,
                objects=objects,
                gripper=state.gripper,
                grasp_point=state.grasp_point.tolist(),
                holding=sorted(state.finger_contacts),
                sim_time=state.time,
                dropped_time=self.plant.dropped_time,
                scene=self._sizes,
            )

    def make_renderer(self, width: int, height: int) -> SceneRenderer:
        """A renderer for this world; create and use it in the thread that renders."""
        return SceneRenderer(self.workcell, self.plant, width, height)


class SceneRenderer:
    """Offscreen RGB images of the workcell's cameras (one OpenGL context, one thread)."""

    def __init__(self, workcell: WorkcellModel, plant: MujocoPlant, width: int, height: int) -> None:
        limit = workcell.config.max_render_size
        if not (0 < width <= limit and 0 < height <= limit):
            raise ValueError(
                f"image size {width}x{height} outside 1..{limit} (raise scene.max_render_size to render larger)"
            )
        self._workcell = workcell
        self._plant = plant
        self._data = mujoco.MjData(workcell.model)
        self._renderer = mujoco.Renderer(workcell.model, height, width)
        self.width, self.height = width, height

    def render(self, cameras: list[str] | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """(simulated time, {camera: H x W x 3 uint8 RGB}) of one consistent physics state."""
        names = cameras if cameras is not None else self._workcell.camera_names
        unknown = sorted(set(names) - set(self._workcell.camera_names))
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; the scene has {self._workcell.camera_names}")
        self._plant.copy_render_state(self._data)
        images = {}
        for name in names:
            self._renderer.update_scene(self._data, camera=name)
            images[name] = self._renderer.render().copy()
        return float(self._data.time), images

    def close(self) -> None:
        """Free the OpenGL context (explicitly: OSMesa complains at interpreter exit otherwise)."""
        self._renderer.close()


def parse_reset_request(text: str, tasks: tuple[str, ...] = TASK_NAMES) -> tuple[str | None, int | None]:
    """`"pick_place_can 7"`, `"pick_place_can"`, `"7"` or `""` -> (task or None, seed or None)."""
    task: str | None = None
    seed: int | None = None
    for token in text.replace(",", " ").split():
        key, _, value = token.partition("=")
        if value:  # task=... / seed=...
            if key not in ("task", "seed"):
                raise ValueError(f"unknown key {key!r} in reset request {text!r} (use task=..., seed=...)")
            token = value
            if key == "seed" and not token.lstrip("-").isdigit():
                raise ValueError(f"seed must be an integer, got {token!r}")
        if token.lstrip("-").isdigit():
            seed = int(token)
        elif token in tasks:
            task = token
        else:
            raise ValueError(f"unknown task {token!r}; choose one of {', '.join(tasks)}")
    return task, seed

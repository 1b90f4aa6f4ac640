"""The four xArm6 tasks of the Evo-1 paper in the workcell: seeded layouts and success tests.

A task says which objects are on the table, where they start (drawn from a seed, so an episode can be
replayed exactly) and when it is solved. Success tests read a `SceneState` (object poses, velocities,
which objects touch the fingers), never the controller, so they judge what physically happened:

* `pick_place_can`  - the red can stands inside the white box, released.
* `can_stacking`    - the red can stands on the blue can, released, both upright.
* `pour_foam`       - the cup is held above the box and tilted past the pour angle (pose test).
* `hand_delivery`   - the red can stands on the palm of the "hand", released.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evo1_ros.parameters import param, validate_fields

# mujoco comes through the scene module, which selects headless EGL before importing it
from evo1_ros.sim.workcell_scene import (
    FIXTURES,
    FREE_OBJECTS,
    SceneConfig,
    WorkcellModel,
    mujoco,
    offstage_positions,
)

TASK_NAMES: tuple[str, ...] = ("pick_place_can", "can_stacking", "pour_foam", "hand_delivery")


@dataclass
class SuccessTolerances:
    """Thresholds of the success tests; each field is the sim node's parameter `tolerances.<field>`."""

    upright_deg: float = param(
        15.0, "object axis within this of vertical counts as standing (deg)", name="tolerances.upright_deg"
    )
    resting_speed: float = param(0.05, "slower counts as at rest (m/s)", name="tolerances.resting_speed")
    stack_xy: float = param(
        0.03, "top can centre within this of the bottom can's axis (m)", name="tolerances.stack_xy"
    )
    stack_z: float = param(
        0.015, "top can bottom within this of the bottom can's top (m)", name="tolerances.stack_z"
    )
    pour_tilt_deg: float = param(
        70.0, "cup axis at least this far from vertical (deg)", name="tolerances.pour_tilt_deg"
    )
    pour_margin: float = param(
        0.03, "the cup mouth may be this far outside the box footprint (m)", name="tolerances.pour_margin"
    )
    pour_clearance: float = param(
        0.02, "the cup centre above the box rim by at least this (m)", name="tolerances.pour_clearance"
    )
    place_z: float = param(
        0.015, "object bottom within this of the support surface (palm) (m)", name="tolerances.place_z"
    )

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass
class LayoutRegions:
    """Where objects may start (m, world frame; the arm stands at the origin, x away from it); each
    field is the sim node's parameter `regions.<field>`."""

    pick_x: list[float] = param(
        [0.30, 0.45], "x range of the object to pick (m)", name="regions.pick_x", to_value=list
    )
    pick_y: list[float] = param(
        [0.06, 0.22],
        "y range of the object to pick (m; mirrored to -y on half of the seeds)",
        name="regions.pick_y",
        to_value=list,
    )
    place_x: list[float] = param(
        [0.32, 0.46], "x range of the target (m)", name="regions.place_x", to_value=list
    )
    place_y: list[float] = param(
        [0.10, 0.22],
        "y range of the target (m; opposite side to the pick)",
        name="regions.place_y",
        to_value=list,
    )
    hand_x: list[float] = param(
        [0.42, 0.52], "x range of the hand (m; hand_delivery's target)", name="regions.hand_x", to_value=list
    )
    min_separation: float = param(
        0.15,
        "distance between the object to pick and the target's centre, at least (m)",
        name="regions.min_separation",
    )

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass
class ObjectPose:
    """Position (m) and orientation quaternion (w, x, y, z) of one object."""

    pos: np.ndarray
    quat: np.ndarray

    @property
    def axis(self) -> np.ndarray:
        """The object's z axis in the world (a can's axis)."""
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, self.quat)
        return mat.reshape(3, 3)[:, 2]

    def tilt_deg(self) -> float:
        """Angle between the object's axis and world up, degrees."""
        return math.degrees(math.acos(float(np.clip(self.axis[2], -1.0, 1.0))))


@dataclass
class SceneState:
    """What the success tests and the scripted expert read from the simulation."""

    time: float
    poses: dict[str, ObjectPose]
    speeds: dict[str, float]  # linear speed of each free object, m/s
    finger_contacts: set[str]  # objects touching a finger pad
    gripper: float  # drive_joint rad (0 open, 0.85 closed)
    grasp_point: np.ndarray  # world position of the point between the finger pads


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by `yaw` about world z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


class Task:
    """A task: layout sampler + success test. Subclasses set `name`, `objects` and implement both."""

    name = ""
    objects: tuple[str, ...] = ()
    prompt_id = ""  # config/tasks.yaml id (equal to name)

    def __init__(
        self,
        scene: SceneConfig,
        regions: LayoutRegions | None = None,
        tolerances: SuccessTolerances | None = None,
    ) -> None:
        self.scene = scene
        self.regions = regions or LayoutRegions()
        self.tol = tolerances or SuccessTolerances()

    # --- layout -----------------------------------------------------------------------------------
    def sample_layout(self, seed: int) -> dict[str, ObjectPose]:
        """Start poses of this task's objects for `seed` (same seed, same layout)."""
        rng = np.random.default_rng(seed)
        r = self.regions
        side = 1.0 if rng.random() < 0.5 else -1.0  # which side of the arm the object to pick is on
        for _ in range(100):
            pick = np.array([rng.uniform(*r.pick_x), side * rng.uniform(*r.pick_y)])
            place = np.array([rng.uniform(*self._target_x()), -side * rng.uniform(*r.place_y)])
            if np.linalg.norm(pick - place) >= r.min_separation:
                break
        else:  # pragma: no cover - the regions above always allow it
            raise ValueError("layout regions too small for min_separation")
        return self._poses(pick, place, float(rng.uniform(-math.pi, math.pi)))

    def _target_x(self) -> list[float]:
        return self.regions.place_x

    def _poses(self, pick: np.ndarray, place: np.ndarray, yaw: float) -> dict[str, ObjectPose]:
        raise NotImplementedError

    def _standing(self, xy: np.ndarray, height: float, yaw: float) -> ObjectPose:
        return ObjectPose(np.array([xy[0], xy[1], height / 2 + 0.0005]), yaw_quat(yaw))

    def _fixture(self, xy: np.ndarray) -> ObjectPose:
        return ObjectPose(np.array([xy[0], xy[1], 0.0]), np.array([1.0, 0, 0, 0]))

    # --- success ----------------------------------------------------------------------------------
    def success(self, state: SceneState) -> bool:
        """True when the task is solved in `state`."""
        raise NotImplementedError

    def _upright(self, state: SceneState, name: str) -> bool:
        return state.poses[name].tilt_deg() <= self.tol.upright_deg

    def _released_at_rest(self, state: SceneState, name: str) -> bool:
        return name not in state.finger_contacts and state.speeds[name] <= self.tol.resting_speed


class PickPlaceCan(Task):
    """Red can into the white box."""

    name = prompt_id = "pick_place_can"
    objects = ("can_a", "box")

    def _poses(self, pick: np.ndarray, place: np.ndarray, yaw: float) -> dict[str, ObjectPose]:
        return {"can_a": self._standing(pick, self.scene.can_height, yaw), "box": self._fixture(place)}

    def success(self, state: SceneState) -> bool:
        """Can centre over the box's inner floor, can bottom below the rim, upright, released, at rest."""
        can, box = state.poses["can_a"], state.poses["box"]
        bx, by, bh = self.scene.box_size
        inner = np.array([bx / 2 - 0.006, by / 2 - 0.006])
        inside = bool(np.all(np.abs(can.pos[:2] - box.pos[:2]) < inner))
        bottom = can.pos[2] - self.scene.can_height / 2
        low = box.pos[2] <= bottom + 0.005 and bottom < box.pos[2] + bh
        return inside and low and self._upright(state, "can_a") and self._released_at_rest(state, "can_a")


class CanStacking(Task):
    """Red can on top of the blue can."""

    name = prompt_id = "can_stacking"
    objects = ("can_a", "can_b")

    def _poses(self, pick: np.ndarray, place: np.ndarray, yaw: float) -> dict[str, ObjectPose]:
        h = self.scene.can_height
        return {"can_a": self._standing(pick, h, yaw), "can_b": self._standing(place, h, -yaw)}

    def success(self, state: SceneState) -> bool:
        """Top can centred on the bottom can, resting on its top face, both upright, released."""
        top, base = state.poses["can_a"], state.poses["can_b"]
        h = self.scene.can_height
        centred = float(np.linalg.norm(top.pos[:2] - base.pos[:2])) <= self.tol.stack_xy
        on_top = abs((top.pos[2] - h / 2) - (base.pos[2] + h / 2)) <= self.tol.stack_z
        upright = self._upright(state, "can_a") and self._upright(state, "can_b")
        return centred and on_top and upright and self._released_at_rest(state, "can_a")


class PourFoam(Task):
    """Tilt the cup over the white box (the pour itself is judged from the cup's pose)."""

    name = prompt_id = "pour_foam"
    objects = ("cup", "box")

    def _poses(self, pick: np.ndarray, place: np.ndarray, yaw: float) -> dict[str, ObjectPose]:
        return {"cup": self._standing(pick, self.scene.cup_height, yaw), "box": self._fixture(place)}

    def success(self, state: SceneState) -> bool:
        """Cup above the box (within the margin), clear of the rim, tilted past the pour angle."""
        cup, box = state.poses["cup"], state.poses["box"]
        bx, by, bh = self.scene.box_size
        half = np.array([bx / 2, by / 2]) + self.tol.pour_margin
        over = bool(np.all(np.abs(cup.pos[:2] - box.pos[:2]) < half))
        above = cup.pos[2] >= box.pos[2] + bh + self.tol.pour_clearance
        return over and above and cup.tilt_deg() >= self.tol.pour_tilt_deg


class HandDelivery(Task):
    """Red can onto the palm of the stand-in hand."""

    name = prompt_id = "hand_delivery"
    objects = ("can_a", "hand")

    def _target_x(self) -> list[float]:
        return self.regions.hand_x

    def _poses(self, pick: np.ndarray, place: np.ndarray, yaw: float) -> dict[str, ObjectPose]:
        return {"can_a": self._standing(pick, self.scene.can_height, yaw), "hand": self._fixture(place)}

    def success(self, state: SceneState) -> bool:
        """Can centre over the palm, its bottom on the palm surface, upright, released, at rest."""
        can, hand = state.poses["can_a"], state.poses["hand"]
        px, py = self.scene.hand_size
        on_palm = abs(can.pos[0] - hand.pos[0]) < px / 2 and abs(can.pos[1] - hand.pos[1]) < py / 2
        palm_top = hand.pos[2] + self.scene.hand_height
        seated = abs((can.pos[2] - self.scene.can_height / 2) - palm_top) <= self.tol.place_z
        return on_palm and seated and self._upright(state, "can_a") and self._released_at_rest(state, "can_a")


TASK_CLASSES: dict[str, type[Task]] = {
    cls.name: cls for cls in (PickPlaceCan, CanStacking, PourFoam, HandDelivery)
}


def make_task(
    name: str,
    scene: SceneConfig,
    regions: LayoutRegions | None = None,
    tolerances: SuccessTolerances | None = None,
) -> Task:
    """The task called `name`; ValueError naming the known tasks otherwise."""
    try:
        cls = TASK_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown sim task {name!r}; choose one of {', '.join(TASK_NAMES)}") from None
    return cls(scene, regions, tolerances)


# --- reading and writing the simulation ------------------------------------------------------------
def apply_layout(workcell: WorkcellModel, data: mujoco.MjData, layout: dict[str, ObjectPose]) -> None:
    """Put the layout's objects in place (at rest) and every other object off-stage; then mj_forward."""
    park = offstage_positions()
    for name in FREE_OBJECTS:
        pose = layout.get(name, ObjectPose(np.array(park[name]), np.array([1.0, 0, 0, 0])))
        adr, dof = workcell.object_qpos[name], workcell.object_dof[name]
        data.qpos[adr : adr + 3] = pose.pos
        data.qpos[adr + 3 : adr + 7] = pose.quat
        data.qvel[dof : dof + 6] = 0.0
    for name in FIXTURES:
        pose = layout.get(name, ObjectPose(np.array(park[name]), np.array([1.0, 0, 0, 0])))
        mid = workcell.mocap[name]
        data.mocap_pos[mid] = pose.pos
        data.mocap_quat[mid] = pose.quat
    mujoco.mj_forward(workcell.model, data)


def read_scene_state(workcell: WorkcellModel, data: mujoco.MjData) -> SceneState:
    """Object poses, speeds and finger contacts of `data` (after a step or mj_forward)."""
    model = workcell.model
    poses: dict[str, ObjectPose] = {}
    speeds: dict[str, float] = {}
    for name in FREE_OBJECTS:
        adr, dof = workcell.object_qpos[name], workcell.object_dof[name]
        poses[name] = ObjectPose(data.qpos[adr : adr + 3].copy(), data.qpos[adr + 3 : adr + 7].copy())
        speeds[name] = float(np.linalg.norm(data.qvel[dof : dof + 3]))
    for name in FIXTURES:
        mid = workcell.mocap[name]
        poses[name] = ObjectPose(data.mocap_pos[mid].copy(), data.mocap_quat[mid].copy())
    body_to_object = {workcell.object_body[n]: n for n in FREE_OBJECTS}
    touching: set[str] = set()
    for i in range(data.ncon):
        con = data.contact[i]
        b1, b2 = model.geom_bodyid[con.geom[0]], model.geom_bodyid[con.geom[1]]
        for finger, other in ((b1, b2), (b2, b1)):
            if finger in workcell.finger_bodies and other in body_to_object:
                touching.add(body_to_object[other])
    return SceneState(
        time=float(data.time),
        poses=poses,
        speeds=speeds,
        finger_contacts=touching,
        gripper=float(data.qpos[workcell.gripper_qpos]),
        grasp_point=data.site_xpos[workcell.grasp_site].copy(),
    )

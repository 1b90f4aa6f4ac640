"""The MuJoCo workcell: the project's xArm6 + gripper URDF on a table, task objects, two cameras.

One model holds the objects of all four tasks (evo1_ros/sim/tasks.py decides which are on the table;
the others wait off-stage on the floor, out of every camera's view), so switching tasks never
recompiles the model under a running controller. The arm is built from `urdf/xarm6_with_gripper.urdf`
(MuJoCo's URDF importer turns the five `<mimic>` tags into joint equalities), gets position
actuators with the xArm's effort limits, gravity compensation (the real controller compensates
gravity too) and a force-limited gripper whose finger pads grasp by contact and friction.

World frame = `link_base`: the arm stands on the table top at z = 0, x points away from the robot.
Rendering is headless: set `MUJOCO_GL=egl` (Mesa, nothing to install) before importing mujoco;
shadows and MSAA are off by default because they cost 5x the frame time on llvmpipe (docs/architecture.md §7).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # (MUJOCO_GL must be set first)

from evo1_ros.control.limits import ARM_JOINTS, GRIPPER_JOINT
from evo1_ros.control.urdf import default_urdf_path
from evo1_ros.parameters import param, validate_fields

#: collision bits: robot geoms touch objects and the world but not each other (the URDF's
#: primitive links overlap at the joints), objects and world touch everything
_ROBOT_CONTYPE, _ROBOT_CONAFFINITY = 2, 1
_WORLD_CONTYPE, _WORLD_CONAFFINITY = 1, 3

FREE_OBJECTS = ("can_a", "can_b", "cup")  # movable (free joint) task objects
FIXTURES = ("box", "hand")  # placed per episode (mocap), not moved by contact
FINGER_BODIES = ("left_finger", "right_finger")
INNER_KNUCKLES = ("left_inner_knuckle", "right_inner_knuckle")
GRIPPER_BODY = "xarm_gripper_base_link"
GRASP_SITE = "grasp_point"
BOX_FLOOR = 0.008  # m, top of the white box's floor above its base


@dataclass
class CameraConfig:
    """One camera: `parent` body ("world" = fixed), position, look-at target and up vector in that frame."""

    name: str
    parent: str = "world"
    pos: list[float] = field(default_factory=lambda: [1.0, -0.5, 0.6])
    target: list[float] = field(default_factory=lambda: [0.4, 0.0, 0.05])
    up: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.0])
    fovy: float = 45.0


def default_cameras() -> list[CameraConfig]:
    """Third-person `base` camera facing the robot across the table, `wrist` camera on the gripper."""
    return [
        CameraConfig("base", "world", [1.15, -0.55, 0.75], [0.30, 0.0, 0.12], [0.0, 0.0, 1.0], 50.0),
        # on the gripper housing, looking down the fingers; image x runs along the closing direction
        CameraConfig("wrist", GRIPPER_BODY, [0.075, 0.0, 0.06], [0.0, 0.0, 0.22], [1.0, 0.0, 0.0], 75.0),
    ]


@dataclass
class SceneConfig:
    """Physics, actuation and layout of the workcell; each field but `cameras` is the sim node's
    parameter `scene.<field>` (config/sim.yaml)."""

    urdf_file: str = param(
        "", "robot URDF the scene is built from; '' = urdf/xarm6_with_gripper.urdf", name="scene.urdf_file"
    )
    timestep: float = param(0.002, "physics time step (s)", name="scene.timestep")
    arm_kp: list[float] = param(
        [3000.0, 3000.0, 2000.0, 800.0, 800.0, 400.0],
        "arm position-servo gains, joint1..joint6 (N m / rad)",
        name="scene.arm_kp",
        to_value=list,
    )
    arm_dampratio: float = param(1.0, "damping ratio of the arm position servos", name="scene.arm_dampratio")
    arm_armature: float = param(
        0.1,
        "rotor inertia seen at each arm joint (kg m^2; keeps stiff servos stable)",
        name="scene.arm_armature",
    )
    arm_effort: list[float] = param(
        [50.0, 50.0, 32.0, 32.0, 32.0, 20.0],
        "arm effort limits, joint1..joint6 (N m; the URDF's)",
        name="scene.arm_effort",
        to_value=list,
    )
    gripper_kp: float = param(
        20.0, "gripper position-servo gain on drive_joint (N m / rad)", name="scene.gripper_kp"
    )
    gripper_effort: float = param(
        2.0,
        "gripper squeeze limit on drive_joint (N m): a grasp stalls on the object instead of crushing it",
        name="scene.gripper_effort",
    )
    finger_friction: float = param(
        1.5, "friction coefficient of the finger pads", name="scene.finger_friction"
    )
    object_friction: float = param(
        1.0, "friction coefficient of the task objects", name="scene.object_friction"
    )
    table_size: list[float] = param(
        [0.9, 1.2], "table top size x, y (m)", name="scene.table_size", to_value=list
    )
    table_center: list[float] = param(
        [0.35, 0.0], "table top centre x, y (m, world frame)", name="scene.table_center", to_value=list
    )
    table_height: float = param(0.75, "table top above the floor (m)", name="scene.table_height")
    can_radius: float = param(
        0.031, "can radius (m; a 62 mm can: the open gripper leaves ~8 mm each side)", name="scene.can_radius"
    )
    can_height: float = param(0.11, "can height (m)", name="scene.can_height")
    can_mass: float = param(0.12, "can mass (kg)", name="scene.can_mass")
    cup_radius: float = param(0.03, "cup radius (m)", name="scene.cup_radius")
    cup_height: float = param(0.09, "cup height (m)", name="scene.cup_height")
    cup_mass: float = param(0.08, "cup mass (kg)", name="scene.cup_mass")
    box_size: list[float] = param(
        [0.16, 0.16, 0.04], "white box outer x, y and wall height (m)", name="scene.box_size", to_value=list
    )
    hand_size: list[float] = param([0.09, 0.11], "palm size x, y (m)", name="scene.hand_size", to_value=list)
    hand_height: float = param(0.12, "palm surface above the table (m)", name="scene.hand_height")
    max_render_size: int = param(
        640,
        "offscreen buffer (px; the node raises it to cover image_width and image_height)",
        name="scene.max_render_size",
    )
    shadows: bool = param(False, "render shadows (~5x the render time on llvmpipe)", name="scene.shadows")
    msaa_samples: int = param(0, "multisample anti-aliasing samples (0 = off)", name="scene.msaa_samples")
    cameras: list[CameraConfig] = field(default_factory=default_cameras)  # poses: the node's camera.*

    def __post_init__(self) -> None:
        validate_fields(self)


def look_at_quat(pos: Sequence[float], target: Sequence[float], up: Sequence[float]) -> np.ndarray:
    """Quaternion (w, x, y, z) of a MuJoCo camera at `pos` looking at `target` (camera looks along -z)."""
    f = np.asarray(target, float) - np.asarray(pos, float)
    f /= np.linalg.norm(f)
    x = np.cross(f, np.asarray(up, float))
    if np.linalg.norm(x) < 1e-9:
        raise ValueError(f"camera up vector {list(up)} is parallel to its viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(x, f)
    mat = np.column_stack([x, y, -f])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.reshape(-1))
    return quat


def _rgba(r: float, g: float, b: float, a: float = 1.0) -> list[float]:
    return [r, g, b, a]


class WorkcellModel:
    """Compiled workcell plus the indices the plant, tasks and renderer need."""

    def __init__(self, config: SceneConfig | None = None) -> None:
        self.config = config or SceneConfig()
        self.spec = build_workcell_spec(self.config)
        self.model = self.spec.compile()
        m = self.model
        self.arm_qpos = np.array([m.jnt_qposadr[m.joint(n).id] for n in ARM_JOINTS])
        self.arm_dof = np.array([m.jnt_dofadr[m.joint(n).id] for n in ARM_JOINTS])
        self.arm_actuators = np.array([m.actuator(n).id for n in ARM_JOINTS])
        self.gripper_qpos = int(m.jnt_qposadr[m.joint(GRIPPER_JOINT).id])
        self.gripper_dof = int(m.jnt_dofadr[m.joint(GRIPPER_JOINT).id])
        self.gripper_actuator = int(m.actuator(GRIPPER_JOINT).id)
        self.mimic_qpos = np.array(
            [m.jnt_qposadr[m.eq_obj1id[i]] for i in range(m.neq) if m.eq_type[i] == mujoco.mjtEq.mjEQ_JOINT]
        )
        self.object_qpos = {n: int(m.jnt_qposadr[m.body(n).jntadr[0]]) for n in FREE_OBJECTS}
        self.object_dof = {n: int(m.jnt_dofadr[m.body(n).jntadr[0]]) for n in FREE_OBJECTS}
        self.object_body = {n: int(m.body(n).id) for n in (*FREE_OBJECTS, *FIXTURES)}
        self.mocap = {n: int(m.body_mocapid[m.body(n).id]) for n in FIXTURES}
        self.finger_bodies = {int(m.body(n).id) for n in FINGER_BODIES}
        self.grasp_site = int(m.site(GRASP_SITE).id)
        self.camera_names = [c.name for c in self.config.cameras]

    def new_data(self) -> mujoco.MjData:
        """Fresh MjData with objects off-stage and the arm at zero."""
        data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, data)
        return data


def _add_object_body(
    spec: mujoco.MjSpec,
    name: str,
    pos: Sequence[float],
    radius: float,
    height: float,
    mass: float,
    rgba: list[float],
    friction: float,
) -> None:
    body = spec.worldbody.add_body(name=name, pos=list(pos))
    body.add_freejoint(name=f"{name}_free")
    geom = body.add_geom(
        name=f"{name}_geom",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[radius, height / 2, 0],
        rgba=rgba,
        mass=mass,
        friction=[friction, 0.01, 0.001],
        condim=4,
    )
    geom.contype, geom.conaffinity = _WORLD_CONTYPE, _WORLD_CONAFFINITY
    # a label band, so rotation about the axis is visible in the images
    band = body.add_geom(
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[radius * 0.3, radius * 1.02, height * 0.2],
        rgba=[0.95, 0.95, 0.95, 1],
        contype=0,
        conaffinity=0,
        mass=0,
    )
    band.group = 1


def build_workcell_spec(config: SceneConfig) -> mujoco.MjSpec:
    """Editable MjSpec of the workcell (compile it, or use `WorkcellModel`)."""
    urdf = Path(config.urdf_file) if config.urdf_file else default_urdf_path()
    if not urdf.is_file():
        raise FileNotFoundError(f"robot description not found: {urdf} (scene.urdf_file in config/sim.yaml)")
    spec = mujoco.MjSpec.from_file(str(urdf))
    spec.modelname = "evo1_workcell"
    spec.compiler.balanceinertia = True
    spec.option.timestep = config.timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.noslip_iterations = 3  # grasped objects must not creep out of the fingers
    quality = spec.visual.quality
    quality.shadowsize = 4096 if config.shadows else 0
    quality.offsamples = int(config.msaa_samples)
    spec.visual.global_.offwidth = int(config.max_render_size)
    spec.visual.global_.offheight = int(config.max_render_size)
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.4, 0.4, 0.4]

    _configure_robot(spec, config)
    _add_world(spec, config)
    _add_task_objects(spec, config)
    _add_cameras(spec, config)
    return spec


def _configure_robot(spec: mujoco.MjSpec, config: SceneConfig) -> None:
    robot_bodies = [b for b in spec.bodies if b.name != "world"]
    for body in robot_bodies:
        body.gravcomp = 1.0
        for geom in body.geoms:
            geom.contype, geom.conaffinity = _ROBOT_CONTYPE, _ROBOT_CONAFFINITY
    for name in INNER_KNUCKLES:
        # the URDF's simplified linkage puts the inner knuckles inside the space between the pads,
        # where the real gripper has none: they would push every object away before the pads close
        for geom in spec.body(name).geoms:
            geom.contype = geom.conaffinity = 0
    for name in FINGER_BODIES:
        for geom in spec.body(name).geoms:
            geom.friction = [config.finger_friction, 0.02, 0.002]
            geom.condim = 6  # torsional + rolling friction: a can held by two pads does not spin out
    for name, kp, effort in zip(ARM_JOINTS, config.arm_kp, config.arm_effort, strict=True):
        joint = spec.joint(name)
        joint.armature = config.arm_armature
        act = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=kp, dampratio=config.arm_dampratio)
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.ctrlrange = list(joint.range)
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-effort, effort]
    drive = spec.joint(GRIPPER_JOINT)
    drive.armature = 0.001
    act = spec.add_actuator(name=GRIPPER_JOINT, target=GRIPPER_JOINT, trntype=mujoco.mjtTrn.mjTRN_JOINT)
    act.set_to_position(kp=config.gripper_kp, dampratio=1.0)
    act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    act.ctrlrange = list(drive.range)
    act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    act.forcerange = [-config.gripper_effort, config.gripper_effort]
    for eq in spec.equalities:  # mimic couplings: stiff, so the linkage does not sag under grip force
        eq.solref = [0.005, 1.0]
    # between the finger pads, at pad centre height: what the expert aims at an object's centre
    spec.body(GRIPPER_BODY).add_site(
        name=GRASP_SITE, pos=[0.0, 0.0, 0.13], size=[0.005, 0, 0], rgba=[0, 0, 0, 0]
    )  # invisible


def _add_world(spec: mujoco.MjSpec, config: SceneConfig) -> None:
    world = spec.worldbody
    world.add_light(name="sun", pos=[0.4, -0.3, 2.0], dir=[0.0, 0.1, -1.0], diffuse=[0.7, 0.7, 0.7])
    sx, sy = config.table_size
    cx, cy = config.table_center
    h = config.table_height
    floor = world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[3, 3, 0.1],
        pos=[0, 0, -h],
        rgba=_rgba(0.5, 0.5, 0.52),
    )
    floor.contype, floor.conaffinity = _WORLD_CONTYPE, _WORLD_CONAFFINITY
    top = world.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[sx / 2, sy / 2, 0.02],
        pos=[cx, cy, -0.02],
        rgba=_rgba(0.62, 0.47, 0.32),
        friction=[config.object_friction, 0.01, 0.001],
    )
    top.contype, top.conaffinity = _WORLD_CONTYPE, _WORLD_CONAFFINITY
    for ix in (-1, 1):
        for iy in (-1, 1):
            world.add_geom(
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[0.03, 0.03, (h - 0.04) / 2],
                pos=[cx + ix * (sx / 2 - 0.05), cy + iy * (sy / 2 - 0.05), -0.04 - (h - 0.04) / 2],
                rgba=_rgba(0.45, 0.33, 0.22),
                contype=0,
                conaffinity=0,
            )


def _add_task_objects(spec: mujoco.MjSpec, config: SceneConfig) -> None:
    park = offstage_positions()
    r, hh = config.can_radius, config.can_height
    f = config.object_friction
    _add_object_body(spec, "can_a", park["can_a"], r, hh, config.can_mass, _rgba(0.8, 0.1, 0.1), f)
    _add_object_body(spec, "can_b", park["can_b"], r, hh, config.can_mass, _rgba(0.15, 0.3, 0.85), f)
    _add_object_body(
        spec,
        "cup",
        park["cup"],
        config.cup_radius,
        config.cup_height,
        config.cup_mass,
        _rgba(0.95, 0.75, 0.1),
        f,
    )
    # the white box: an open tray (floor + four walls), placed per episode
    bx, by, bh = config.box_size
    box = spec.worldbody.add_body(name="box", pos=list(park["box"]), mocap=True)
    wall = 0.006
    white = _rgba(0.96, 0.96, 0.96)
    parts = [
        ([bx / 2, by / 2, BOX_FLOOR / 2], [0, 0, BOX_FLOOR / 2]),
        ([wall / 2, by / 2, bh / 2], [bx / 2 - wall / 2, 0, bh / 2]),
        ([wall / 2, by / 2, bh / 2], [-bx / 2 + wall / 2, 0, bh / 2]),
        ([bx / 2, wall / 2, bh / 2], [0, by / 2 - wall / 2, bh / 2]),
        ([bx / 2, wall / 2, bh / 2], [0, -by / 2 + wall / 2, bh / 2]),
    ]
    for size, pos in parts:
        g = box.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX, size=size, pos=pos, rgba=white, friction=[f, 0.01, 0.001]
        )
        g.contype, g.conaffinity = _WORLD_CONTYPE, _WORLD_CONAFFINITY
    # the "hand": a palm on a forearm post, standing in for a person's open hand
    px, py = config.hand_size
    hand = spec.worldbody.add_body(name="hand", pos=list(park["hand"]), mocap=True)
    skin = _rgba(0.93, 0.74, 0.62)
    palm = hand.add_geom(
        name="palm",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[px / 2, py / 2, 0.01],
        pos=[0, 0, config.hand_height - 0.01],
        rgba=skin,
        friction=[f, 0.01, 0.001],
    )
    palm.contype, palm.conaffinity = _WORLD_CONTYPE, _WORLD_CONAFFINITY
    for side in (-1, 1):  # thumb and little-finger edges keep the object on the palm
        edge = hand.add_geom(
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            size=[0.009, px / 2, 0],
            pos=[0, side * (py / 2), config.hand_height + 0.004],
            quat=[math.cos(math.pi / 4), 0, math.sin(math.pi / 4), 0],
            rgba=skin,
        )
        edge.contype, edge.conaffinity = _WORLD_CONTYPE, _WORLD_CONAFFINITY
    hand.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.03, (config.hand_height - 0.02) / 2, 0],
        pos=[0, 0, (config.hand_height - 0.02) / 2],
        rgba=_rgba(0.3, 0.35, 0.5),
        contype=0,
        conaffinity=0,
    )


def offstage_positions() -> dict[str, tuple[float, float, float]]:
    """Where unused objects wait: on the floor behind the robot, under the table edge, out of view."""
    return {
        "can_a": (-0.55, -0.3, -0.69),
        "can_b": (-0.55, -0.1, -0.69),
        "cup": (-0.55, 0.1, -0.70),
        "box": (-0.75, 0.3, -0.75),
        "hand": (-0.75, -0.5, -0.75),
    }


def _add_cameras(spec: mujoco.MjSpec, config: SceneConfig) -> None:
    names = [c.name for c in config.cameras]
    if len(set(names)) != len(names):
        raise ValueError(f"camera names must be unique, got {names}")
    for cam in config.cameras:
        parent = spec.worldbody if cam.parent == "world" else spec.body(cam.parent)
        if parent is None:
            raise ValueError(f"camera {cam.name!r}: no body named {cam.parent!r} to mount it on")
        parent.add_camera(
            name=cam.name,
            pos=list(cam.pos),
            quat=list(look_at_quat(cam.pos, cam.target, cam.up)),
            fovy=cam.fovy,
        )

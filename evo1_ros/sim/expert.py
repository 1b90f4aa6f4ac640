"""Scripted expert for the four workcell tasks: IK waypoints + grasp logic, as joint trajectories.

The expert sees what a privileged observer of the simulation sees (the sim node's `~/task_state`:
object poses, grasp point, which objects touch the finger pads) and answers with the next *motion*:
timed joint waypoints `[joint1..joint6, drive_joint]` that a ROS runner publishes on
`/xarm/joint_trajectory`, the same command path a teleoperator or the policy uses, so the recorder
records the demonstrations as it would a human's. It is closed-loop between motions: the place
target is corrected by where the object actually sits in the grasp, and a missed grasp is retried.

Motions (pick part shared by all tasks): approach above the object -> descend -> close -> lift ->
transport above the target -> lower (place) or tilt (pour) -> open -> retreat. Cartesian paths are
sampled every `cartesian_step` m, solved with the URDF kinematics (evo1_ros.control.kinematics) seeded
from the previous waypoint (so the joint path is continuous), and timed with a trapezoidal profile
under `max_joint_speed` / `max_joint_acc` (below the driver's caps, so the driver never has to slow
the command and the recorded action is what was executed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evo1_ros.control.kinematics import FLANGE_LINK, SerialChain, axis_angle_matrix
from evo1_ros.sim.tasks import TASK_NAMES

#: tool pointing down, tool x along world x (the fingers close along world -y/+y)
TOOL_DOWN = np.diag([1.0, -1.0, -1.0])
GRIPPER_OPEN = 0.0
GRIPPER_CLOSED = 0.85


@dataclass
class ExpertSettings:
    """Tunables of the scripted expert (evo1 sim record-expert / eval take these defaults)."""

    grasp_offset: float = 0.13  # m, flange -> grasp point (the scene's grasp_point site)
    grasp_depth: float = 0.03  # m, grasp point below the object's top (the pads hold its upper part)
    approach_height: float = 0.10  # m above the grasp pose before descending
    carry_height: float = 0.30  # m, grasp point height while transporting
    place_clearance: float = 0.008  # m, object bottom above its support when released
    pour_height: float = 0.16  # m, grasp point above the box rim while pouring
    pour_tilt_deg: float = 110.0  # rotation about the tool x axis
    cartesian_step: float = 0.02  # m between IK waypoints
    max_joint_speed: float = 0.8  # rad/s (driver cap: 1.0)
    max_joint_acc: float = 3.0  # rad/s² (driver cap: 4.0)
    gripper_time: float = 0.8  # s for a full close/open (drive_joint cap 1.5 rad/s -> >= 0.57 s)
    max_grasp_attempts: int = 3
    scene: dict[str, float] = field(default_factory=dict)  # object sizes (the sim's task_state "scene")


@dataclass
class Motion:
    """One command: waypoints (N x 7) at `times` (s from the trajectory start, increasing, > 0)."""

    name: str
    times: np.ndarray
    positions: np.ndarray
    settle: str = "arm"  # completion: "arm" = joints at the last point, "gripper" = fingers stopped

    @property
    def duration(self) -> float:
        """Time of the last point."""
        return float(self.times[-1])

    @property
    def final(self) -> np.ndarray:
        """The last waypoint (7 values)."""
        return self.positions[-1]


class ExpertError(RuntimeError):
    """The expert cannot continue (unreachable pose, object lost too often)."""


def trapezoid_times(
    positions: np.ndarray, max_speed: float, max_acc: float, min_duration: float = 0.2
) -> np.ndarray:
    """Times of `positions` (N x D, the first being the start) along a rest-to-rest trapezoidal profile
    over the path length in the max-norm, so no joint exceeds `max_speed` / `max_acc`."""
    steps = np.max(np.abs(np.diff(positions, axis=0)), axis=1)
    s = np.concatenate([[0.0], np.cumsum(steps)])
    total = float(s[-1])
    if total <= 1e-9:
        return np.linspace(0.0, min_duration, len(positions))
    t_acc = max_speed / max_acc
    if total < max_speed * t_acc:  # triangular profile
        t_acc = math.sqrt(total / max_acc)
        v = max_acc * t_acc
        duration = 2 * t_acc
    else:
        v = max_speed
        duration = total / v + t_acc
    scale = max(1.0, min_duration / duration)

    def time_at(dist: float) -> float:
        d_acc = 0.5 * max_acc * t_acc * t_acc
        if dist <= d_acc:
            return math.sqrt(2 * dist / max_acc)
        if dist <= total - d_acc:
            return t_acc + (dist - d_acc) / v
        return duration - math.sqrt(max(0.0, 2 * (total - dist) / max_acc))

    times = np.array([time_at(float(d)) for d in s]) * scale
    for i in range(1, len(times)):  # strictly increasing (identical waypoints get a tiny gap)
        times[i] = max(times[i], times[i - 1] + 1e-3)
    return times


class ScriptedExpert:
    """State machine for one episode of one task; call `next_motion` until it returns None."""

    def __init__(
        self, task: str, settings: ExpertSettings | None = None, chain: SerialChain | None = None
    ) -> None:
        if task not in TASK_NAMES:
            raise ValueError(f"no expert for task {task!r}; choose one of {', '.join(TASK_NAMES)}")
        self.task = task
        self.s = settings or ExpertSettings()
        self.chain = chain or SerialChain.from_urdf(tip=FLANGE_LINK)
        self.phase = "approach"
        self.attempts = 0
        self.log: list[str] = []
        self._object = "cup" if task == "pour_foam" else "can_a"
        self._held_offset = np.zeros(2)

    # --- geometry ---------------------------------------------------------------------------------
    def _size(self, key: str, default: float) -> float:
        return float(self.s.scene.get(key, default))

    def _object_height(self) -> float:
        return self._size("cup_height", 0.09) if self._object == "cup" else self._size("can_height", 0.11)

    def _ik(self, point: np.ndarray, rot: np.ndarray, seed: np.ndarray) -> np.ndarray:
        target = np.eye(4)
        target[:3, :3] = rot
        target[:3, 3] = point - rot @ np.array([0.0, 0.0, self.s.grasp_offset])
        result = self.chain.ik(target, seed, position_tolerance=5e-4, orientation_tolerance=5e-3)
        if not result.success:
            raise ExpertError(
                f"{self.task}/{self.phase}: no IK solution for grasp point {np.round(point, 3).tolist()} "
                f"(residual {result.position_error:.4f} m)"
            )
        return result.q

    def _grasp_point(self, q: np.ndarray) -> np.ndarray:
        flange = self.chain.fk(q)
        return flange[:3, 3] + flange[:3, :3] @ np.array([0.0, 0.0, self.s.grasp_offset])

    def _cartesian(
        self,
        name: str,
        q: np.ndarray,
        gripper: float,
        goal: np.ndarray,
        rot_goal: np.ndarray | None = None,
        tilt: float = 0.0,
    ) -> Motion:
        """Straight line of the grasp point from where it is to `goal` (optionally tilting about tool x)."""
        start = self._grasp_point(q)
        rot_end = TOOL_DOWN if rot_goal is None else rot_goal
        n = max(
            2, int(math.ceil(max(np.linalg.norm(goal - start), abs(tilt) * 0.1) / self.s.cartesian_step)) + 1
        )
        qs = [np.asarray(q, float)]
        for k in range(1, n):
            a = k / (n - 1)
            point = start + a * (goal - start)
            rot = TOOL_DOWN @ axis_angle_matrix(np.array([1.0, 0.0, 0.0]), a * tilt) if tilt else rot_end
            qs.append(self._ik(point, rot, qs[-1]))
        joints = np.array(qs)
        times = trapezoid_times(joints, self.s.max_joint_speed, self.s.max_joint_acc)
        grip = np.full((len(joints), 1), gripper)
        return Motion(name, times[1:], np.hstack([joints, grip])[1:])

    def _gripper(self, name: str, q: np.ndarray, current: float, target: float) -> Motion:
        duration = max(0.2, self.s.gripper_time * abs(target - current) / (GRIPPER_CLOSED - GRIPPER_OPEN))
        point = np.concatenate([q, [target]])
        return Motion(name, np.array([duration]), point[None, :], settle="gripper")

    # --- targets ----------------------------------------------------------------------------------
    def _pick_point(self, objects: Mapping[str, list[float]]) -> np.ndarray:
        pos = np.asarray(objects[self._object][:3], float)
        top = pos[2] + self._object_height() / 2
        return np.array([pos[0], pos[1], top - self.s.grasp_depth])

    def _place_point(self, objects: Mapping[str, list[float]]) -> np.ndarray:
        """Grasp point when the held object sits on its support (corrected by its offset in the grasp)."""
        h = self._object_height()
        above_bottom = h - self.s.grasp_depth  # grasp point above the object's bottom
        if self.task == "pick_place_can":
            support = np.asarray(objects["box"][:3], float)
            top = support[2] + self._size("box_floor", 0.008)
        elif self.task == "can_stacking":
            support = np.asarray(objects["can_b"][:3], float)
            top = support[2] + self._size("can_height", 0.11) / 2
        elif self.task == "hand_delivery":
            support = np.asarray(objects["hand"][:3], float)
            top = support[2] + self._size("hand_height", 0.12)
        else:
            raise AssertionError(self.task)
        xy = support[:2] + self._held_offset
        return np.array([xy[0], xy[1], top + above_bottom + self.s.place_clearance])

    # --- the state machine ------------------------------------------------------------------------
    def next_motion(self, q: np.ndarray, gripper: float, status: Mapping[str, Any]) -> Motion | None:
        """The next motion from the measured joints, gripper (rad) and the sim's task state; None = done."""
        q = np.asarray(q, float)
        objects = status["objects"]
        s = self.s
        phase = self.phase
        self.log.append(phase)
        if phase == "approach":
            self.attempts += 1
            if self.attempts > s.max_grasp_attempts:
                raise ExpertError(f"{self.task}: gave up after {s.max_grasp_attempts} failed grasps")
            pick = self._pick_point(objects)
            self.phase = "open" if gripper > 0.05 else "descend"
            above = pick + np.array([0.0, 0.0, s.approach_height])
            return self._cartesian("approach", q, gripper, above)
        if phase == "open":
            self.phase = "descend"
            return self._gripper("open", q, gripper, GRIPPER_OPEN)
        if phase == "descend":
            self.phase = "close"
            return self._cartesian("descend", q, GRIPPER_OPEN, self._pick_point(objects))
        if phase == "close":
            self.phase = "lift"
            return self._gripper("close", q, gripper, GRIPPER_CLOSED)
        if phase == "lift":
            if self._object not in status.get("holding", []):
                self.phase = "retry"
                return self._gripper("release_missed", q, gripper, GRIPPER_OPEN)
            grasp = np.asarray(status["grasp_point"], float)
            self._held_offset = grasp[:2] - np.asarray(objects[self._object][:2], float)
            self.phase = "transport"
            up = self._grasp_point(q)
            up[2] = s.carry_height
            return self._cartesian("lift", q, GRIPPER_CLOSED, up)
        if phase == "retry":
            self.phase = "approach"
            up = self._grasp_point(q) + np.array([0.0, 0.0, s.approach_height])
            return self._cartesian("retreat_missed", q, gripper, up)
        if phase == "transport":
            if self._object not in status.get("holding", []):
                self.phase = "approach"  # dropped it: start over from where it lies
                return self._gripper("release_dropped", q, gripper, GRIPPER_OPEN)
            if self.task == "pour_foam":
                box = np.asarray(objects["box"][:3], float)
                rim = box[2] + self._size("box_wall", 0.04)
                goal = np.array([box[0], box[1], rim + s.pour_height])
                self.phase = "tilt"
            else:
                place = self._place_point(objects)
                goal = np.array([place[0], place[1], s.carry_height])
                self.phase = "lower"
            return self._cartesian("transport", q, GRIPPER_CLOSED, goal)
        if phase == "tilt":
            self.phase = "hold"
            here = self._grasp_point(q)
            return self._cartesian("tilt", q, GRIPPER_CLOSED, here, tilt=math.radians(s.pour_tilt_deg))
        if phase == "hold":
            self.phase = "done"
            return None
        if phase == "lower":
            self.phase = "release"
            return self._cartesian("lower", q, GRIPPER_CLOSED, self._place_point(objects))
        if phase == "release":
            self.phase = "retreat"
            return self._gripper("release", q, gripper, GRIPPER_OPEN)
        if phase == "retreat":
            self.phase = "done"
            up = self._grasp_point(q) + np.array([0.0, 0.0, s.approach_height])
            return self._cartesian("retreat", q, GRIPPER_OPEN, up)
        return None

    @property
    def done(self) -> bool:
        """True once the last motion was handed out."""
        return self.phase == "done"

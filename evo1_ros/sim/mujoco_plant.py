"""`MujocoPlant`: the workcell's physics behind the loopback xArm controller (a `JointPlant`).

The controller decides *where* the joints should go (servo targets, queued moves, velocities, holds)
with the same velocity/acceleration-limited profile as the kinematic `TrackingPlant`; here that
profile is only the *reference*. MuJoCo position actuators (xArm effort limits, gravity compensated)
track it, so what the SDK reads back - positions, velocities, actuator torques - is the simulated
arm's, including the lag and contacts (an arm pressed against the table stays there). The gripper
reference ramps at the commanded speed; the force-limited finger actuator closes until the pads
stall on an object, which the controller's gripper model then reports as "grasped".

Physics runs in real time: each `step(dt)` (called by the controller's plant thread with the wall
time elapsed) advances MuJoCo by whole timesteps, carrying the remainder. If the machine cannot keep
up, at most `max_lag` seconds are simulated per call and the rest is dropped and counted
(`dropped_time`), so a stall slows the simulation instead of making it spiral.

Threads: the controller calls the `JointPlant` methods with its own lock held; scene access from
elsewhere (object layout, rendering, success tests) goes through this class's `lock`. Never take
the controller's lock while holding this one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from evo1_ros.sim.plant import JointPlant
from evo1_ros.sim.tasks import ObjectPose, SceneState, apply_layout, read_scene_state
from evo1_ros.sim.tracking_plant import TrackingPlant

# mujoco comes through the scene module, which selects headless EGL before importing it
from evo1_ros.sim.workcell_scene import (
    WorkcellModel,
    mujoco,
)

_MOVING_SPEED = 0.02  # rad/s; slower joints count as at rest (contact jitter never reaches it)
_GRIPPER_MOVING_SPEED = 0.05  # rad/s


class MujocoPlant(JointPlant):
    """Six position-servoed arm joints and the xArm Gripper in the MuJoCo workcell."""

    def __init__(
        self,
        workcell: WorkcellModel,
        max_velocity: float = np.pi,
        max_acceleration: float = 20.0,
        max_lag: float = 0.05,
    ) -> None:
        """`max_velocity`/`max_acceleration`: default limits of the reference profile (the controller
        passes its own per command); `max_lag`: most simulated seconds per `step` call."""
        if max_lag <= 0:
            raise ValueError("max_lag must be > 0")
        self.workcell = workcell
        self.model = workcell.model
        self.data = workcell.new_data()
        self.lock = threading.RLock()
        self._w = workcell
        self._ref = TrackingPlant(n_joints=6, max_velocity=max_velocity, max_acceleration=max_acceleration)
        lo, hi = self.model.jnt_range[self.model.actuator_trnid[workcell.gripper_actuator, 0]]
        self._g_range = (float(lo), float(hi))
        self._g_ref = 0.0
        self._g_target = 0.0
        self._g_speed = 1.0
        self._max_steps = max(1, int(round(max_lag / self.model.opt.timestep)))
        self._debt = 0.0
        self.dropped_time = 0.0  # simulated time skipped because physics fell behind the wall clock
        self.steps = 0

    # --- JointPlant -------------------------------------------------------------------------------
    @property
    def n_joints(self) -> int:
        """Six arm joints."""
        return 6

    def reset(self, q: Sequence[float], gripper: float | None = None) -> None:
        """Place the arm at `q` (and the gripper at `gripper` rad) at rest."""
        q_arr = np.asarray(q, dtype=float).reshape(6)
        with self.lock:
            d = self.data
            d.qpos[self._w.arm_qpos] = q_arr
            d.qvel[self._w.arm_dof] = 0.0
            d.ctrl[self._w.arm_actuators] = q_arr
            self._ref.reset(q_arr)
            if gripper is not None:
                g = float(np.clip(gripper, *self._g_range))
                d.qpos[self._w.gripper_qpos] = g
                d.qpos[self._w.mimic_qpos] = g
                d.qvel[self._w.gripper_dof] = 0.0
                self._g_ref = self._g_target = g
                d.ctrl[self._w.gripper_actuator] = g
            mujoco.mj_forward(self.model, d)

    def set_position_target(
        self,
        q: Sequence[float],
        max_velocity: float | Sequence[float],
        max_acceleration: float | Sequence[float],
    ) -> None:
        """Move the reference towards `q` within the limits; the servos follow it."""
        self._ref.set_position_target(q, max_velocity, max_acceleration)

    def set_velocity_target(self, dq: Sequence[float], max_acceleration: float | Sequence[float]) -> None:
        """Track joint velocities with the reference."""
        self._ref.set_velocity_target(dq, max_acceleration)

    def hold(self) -> None:
        """Brake the reference and hold where it stops."""
        self._ref.hold()

    def set_gripper_target(self, position: float, max_velocity: float) -> None:
        """Ramp the finger reference to `position` rad at `max_velocity` rad/s."""
        self._g_target = float(np.clip(position, *self._g_range))
        self._g_speed = max(float(max_velocity), 1e-6)

    def hold_gripper(self) -> None:
        """Stop the fingers where they are (the measured position, not the reference)."""
        with self.lock:
            g = float(self.data.qpos[self._w.gripper_qpos])
        self._g_ref = self._g_target = g

    def step(self, dt: float) -> None:
        """Advance the reference by `dt` and the physics by as many whole timesteps as are due."""
        if dt <= 0.0:
            return
        self._ref.step(dt)
        delta = self._g_target - self._g_ref
        self._g_ref += float(np.clip(delta, -self._g_speed * dt, self._g_speed * dt))
        ts = self.model.opt.timestep
        with self.lock:
            d = self.data
            d.ctrl[self._w.arm_actuators] = self._ref.q
            d.ctrl[self._w.gripper_actuator] = self._g_ref
            self._debt += dt
            n = int(self._debt / ts + 1e-9)
            if n > self._max_steps:
                self.dropped_time += (n - self._max_steps) * ts
                self._debt -= (n - self._max_steps) * ts
                n = self._max_steps
            for _ in range(n):
                mujoco.mj_step(self.model, d)
            self._debt -= n * ts
            self.steps += n

    @property
    def q(self) -> np.ndarray:
        """Measured joint positions (rad)."""
        with self.lock:
            return self.data.qpos[self._w.arm_qpos].copy()

    @property
    def dq(self) -> np.ndarray:
        """Measured joint velocities (rad/s)."""
        with self.lock:
            return self.data.qvel[self._w.arm_dof].copy()

    @property
    def effort(self) -> np.ndarray:
        """Actuator torques (N m), gravity compensation excluded (as the xArm reports external load)."""
        with self.lock:
            return self.data.qfrc_actuator[self._w.arm_dof].copy()

    @property
    def gripper_position(self) -> float:
        """Measured drive_joint position (rad)."""
        with self.lock:
            return float(self.data.qpos[self._w.gripper_qpos])

    @property
    def gripper_velocity(self) -> float:
        """Measured drive_joint velocity (rad/s)."""
        with self.lock:
            return float(self.data.qvel[self._w.gripper_dof])

    def is_moving(self) -> bool:
        """True while the reference moves or the arm has not come to rest."""
        return self._ref.is_moving() or bool(np.any(np.abs(self.dq) > _MOVING_SPEED))

    def gripper_is_moving(self) -> bool:
        """True while the finger reference ramps or the fingers still move."""
        ramping = abs(self._g_target - self._g_ref) > 1e-9
        return ramping or abs(self.gripper_velocity) > _GRIPPER_MOVING_SPEED

    # --- scene access (simulation side) ------------------------------------------------------------
    @property
    def sim_time(self) -> float:
        """Simulated seconds since construction."""
        with self.lock:
            return float(self.data.time)

    @property
    def reference(self) -> np.ndarray:
        """Where the servos are being driven (the controller's motion profile), rad."""
        return self._ref.q

    def place_objects(self, layout: dict[str, ObjectPose]) -> None:
        """Put a task's objects in place at rest (others off-stage); the arm is not touched."""
        with self.lock:
            apply_layout(self._w, self.data, layout)

    def scene_state(self) -> SceneState:
        """Object poses, speeds and finger contacts now."""
        with self.lock:
            return read_scene_state(self._w, self.data)

    def copy_render_state(self, dst: mujoco.MjData) -> None:
        """Copy what rendering needs into `dst` (a renderer's own MjData) and update its frames."""
        with self.lock:
            dst.qpos[:] = self.data.qpos
            dst.mocap_pos[:] = self.data.mocap_pos
            dst.mocap_quat[:] = self.data.mocap_quat
            dst.time = self.data.time
        mujoco.mj_kinematics(self.model, dst)
        mujoco.mj_camlight(self.model, dst)

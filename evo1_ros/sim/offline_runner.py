"""Run the scripted expert against the MuJoCo plant directly, faster than real time (no ROS, no SDK).

The ROS path (sim node + driver + SDK + loopback controller, `evo1 sim record-expert`) is what
recordings and evaluations use; this shortcut steps the same plant with the same motions sampled the
way the driver samples a trajectory (linear between points, from where the arm was), so expert logic
and task success can be checked in seconds: unit tests, `bench/sim_rate.py`'s per-task success rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evo1_ros.sim.expert import ExpertError, ExpertSettings, Motion, ScriptedExpert
from evo1_ros.sim.sim_world import READY_JOINTS, SimWorld


@dataclass
class OfflineEpisode:
    """Outcome of one offline expert episode."""

    task: str
    seed: int
    success: bool
    success_time: float | None  # simulated s from reset to the first success
    duration: float  # simulated s the episode ran
    motions: list[str] = field(default_factory=list)
    error: str = ""


def _execute(
    world: SimWorld, motion: Motion, dt: float, max_speed: float, max_acc: float, status_period: float = 0.1
) -> None:
    plant = world.plant
    start = np.concatenate([plant.reference, [plant.gripper_position]])
    times = np.concatenate([[0.0], motion.times])
    points = np.vstack([start, motion.positions])
    t = 0.0
    check_every = max(1, int(round(status_period / dt)))
    tick = 0
    while t < motion.duration:
        t += dt
        tick += 1
        cmd = np.array([np.interp(t, times, points[:, j]) for j in range(points.shape[1])])
        plant.set_position_target(cmd[:6], max_speed, max_acc)
        plant.set_gripper_target(cmd[6], 1.5)
        plant.step(dt)
        if tick % check_every == 0:
            world.status()  # success is latched at the rate the sim node publishes it
    settle = 0.0
    while settle < 2.0:  # wait for the arm / fingers to come to rest, as the ROS runner does
        plant.step(dt)
        settle += dt
        tick += 1
        if tick % check_every == 0:
            world.status()
        if motion.settle == "gripper":
            if not plant.gripper_is_moving() and settle > 0.1:
                break
        elif np.max(np.abs(plant.q - motion.final[:6])) < 0.01 and not plant.is_moving():
            break
    world.status()


def run_offline_episode(
    world: SimWorld,
    task: str,
    seed: int,
    settings: ExpertSettings | None = None,
    time_limit: float = 40.0,
    dt: float = 0.004,
    max_speed: float = 1.0,
    max_acc: float = 4.0,
) -> OfflineEpisode:
    """Reset `world` (not started: nothing else may step its plant) to `task`/`seed` with the arm at the
    ready pose, run the expert to the end or `time_limit` simulated seconds, report the outcome."""
    world.plant.reset(READY_JOINTS, 0.0)
    world.reset(task, seed)
    status = world.status().as_dict()
    expert_settings = settings or ExpertSettings()
    expert_settings.scene = status["scene"]
    expert = ScriptedExpert(task, expert_settings)
    start = world.plant.sim_time
    error = ""
    while world.plant.sim_time - start < time_limit:
        try:
            motion = expert.next_motion(world.plant.q, world.plant.gripper_position, status)
        except ExpertError as exc:
            error = str(exc)
            break
        if motion is None:
            break
        _execute(world, motion, dt, max_speed, max_acc)
        status = world.status().as_dict()
    final = world.status()
    return OfflineEpisode(
        task=task,
        seed=seed,
        success=final.success_time is not None,
        success_time=final.success_time,
        duration=world.plant.sim_time - start,
        motions=list(expert.log),
        error=error,
    )

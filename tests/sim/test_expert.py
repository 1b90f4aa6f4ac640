"""Scripted expert: trajectory timing, grasp retry logic, and all four tasks solved in physics (offline)."""

from __future__ import annotations

import numpy as np
import pytest

from evo1_ros.sim.expert import ExpertSettings, ScriptedExpert, trapezoid_times
from evo1_ros.sim.offline_runner import run_offline_episode
from evo1_ros.sim.sim_world import SimSettings, SimWorld
from evo1_ros.sim.tasks import TASK_NAMES
from fixtures.xarm import READY


def test_trapezoid_times_respect_speed_and_acceleration():
    path = np.linspace([0.0, 0.0], [1.2, -0.3], 25)
    times = trapezoid_times(path, max_speed=0.6, max_acc=2.0)
    assert times[0] == 0.0 and np.all(np.diff(times) > 0)
    speeds = np.max(np.abs(np.diff(path, axis=0)), axis=1) / np.diff(times)
    assert speeds.max() <= 0.6 + 1e-6
    assert times[-1] == pytest.approx(1.2 / 0.6 + 0.6 / 2.0, rel=1e-6)


def _status(holding: list[str]) -> dict:
    return {
        "objects": {"can_a": [0.35, 0.15, 0.055, 1, 0, 0, 0], "box": [0.4, -0.15, 0.0, 1, 0, 0, 0]},
        "grasp_point": [0.35, 0.15, 0.08],
        "holding": holding,
    }


def test_expert_plans_reachable_motions_and_retries_a_missed_grasp():
    expert = ScriptedExpert("pick_place_can", ExpertSettings(max_grasp_attempts=2))
    q, grip = READY.copy(), 0.0
    names = []
    for holding in ([], [], [], [], [], []):
        motion = expert.next_motion(q, grip, _status(holding))
        names.append(motion.name)
        assert motion.positions.shape[1] == 7 and np.all(np.diff(motion.times) > 0)
        q, grip = motion.final[:6], motion.final[6]
    # missed (nothing between the pads): open, back up, approach again
    assert names == ["approach", "descend", "close", "release_missed", "retreat_missed", "approach"]
    descend_end = ScriptedExpert("pick_place_can").chain.fk(q)
    assert descend_end[2, 2] < -0.99  # tool still pointing down
    # second miss: descend, close, release, retreat, then it gives up (max_grasp_attempts=2)
    for expected in ("descend", "close", "release_missed", "retreat_missed"):
        motion = expert.next_motion(q, grip, _status([]))
        assert motion.name == expected
        q, grip = motion.final[:6], motion.final[6]
    with pytest.raises(RuntimeError, match="gave up"):
        expert.next_motion(q, grip, _status([]))


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="hand_delivery"):
        ScriptedExpert("juggle")


@pytest.fixture(scope="module")
def world() -> SimWorld:
    return SimWorld(SimSettings())


@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_solves_each_task_in_physics(world, task):
    episode = run_offline_episode(world, task, seed=2)
    assert episode.error == ""
    assert episode.success, episode.motions
    assert episode.motions[:4] == ["approach", "descend", "close", "lift"]

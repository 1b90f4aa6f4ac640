"""TrackingPlant: limits are respected, targets are reached, hold/velocity modes behave."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from evo1_ros.sim.tracking_plant import TrackingPlant

DT = 0.004


def run(plant: TrackingPlant, seconds: float, dt: float = DT) -> tuple[np.ndarray, np.ndarray]:
    """Step and return the velocity history and accelerations (finite differences)."""
    vels = [plant.dq]
    for _ in range(int(round(seconds / dt))):
        plant.step(dt)
        vels.append(plant.dq)
    v = np.array(vels)
    return v, np.diff(v, axis=0) / dt


def test_reaches_target_within_limits() -> None:
    plant = TrackingPlant(max_velocity=1.0, max_acceleration=5.0)
    target = np.array([1.0, -0.5, 0.2, 0.0, 0.3, -1.2])
    plant.set_position_target(target, 1.0, 5.0)
    v, a = run(plant, 2.5)
    assert np.allclose(plant.q, target, atol=1e-9)
    assert not plant.is_moving()
    assert np.max(np.abs(v)) <= 1.0 + 1e-9
    assert np.max(np.abs(a)) <= 5.0 + 1e-6
    # a 1.2 rad move with these limits needs about 1.4 s: it must not be instantaneous
    fresh = TrackingPlant(max_velocity=1.0, max_acceleration=5.0)
    fresh.set_position_target(target, 1.0, 5.0)
    run(fresh, 0.5)
    assert abs(fresh.q[5] - target[5]) > 0.5


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-2.0, 2.0), min_size=6, max_size=6),
    st.lists(st.floats(-2.0, 2.0), min_size=6, max_size=6),
    st.floats(0.5, 3.0),
    st.floats(1.0, 20.0),
)
def test_replanning_keeps_velocity_continuous(
    first: list[float], second: list[float], vmax: float, amax: float
) -> None:
    plant = TrackingPlant(max_velocity=vmax, max_acceleration=amax)
    plant.set_position_target(first, vmax, amax)
    v1, a1 = run(plant, 0.2, 0.01)
    plant.set_position_target(second, vmax, amax)  # interrupt mid-motion (mode 6 style)
    v2, a2 = run(plant, 4.0 / vmax + 2 * vmax / amax + 0.5, 0.01)
    assert np.max(np.abs(np.vstack([v1, v2]))) <= vmax + 1e-9
    assert np.max(np.abs(np.vstack([a1, a2]))) <= amax * (1 + 1e-6) + 1e-6
    assert np.allclose(plant.q, second, atol=1e-7)


def test_velocity_mode_and_hold() -> None:
    plant = TrackingPlant(max_velocity=3.0, max_acceleration=10.0)
    plant.set_velocity_target([0.5, 0, 0, 0, 0, -0.25], 10.0)
    run(plant, 0.5)
    assert np.allclose(plant.dq, [0.5, 0, 0, 0, 0, -0.25])
    assert plant.is_moving()
    q_before = plant.q
    plant.hold()
    _, a = run(plant, 0.3)
    assert np.max(np.abs(a)) <= 10.0 + 1e-6
    assert not plant.is_moving()
    stopped = plant.q
    # braking from 0.5 rad/s at 10 rad/s² covers 0.0125 rad
    assert abs(stopped[0] - q_before[0] - 0.0125) < 0.005
    run(plant, 0.2)
    assert np.allclose(plant.q, stopped)


def test_effort_follows_acceleration() -> None:
    plant = TrackingPlant(max_acceleration=10.0, inertia=[1, 1, 1, 1, 1, 2])
    plant.set_position_target([0, 0, 0, 0, 0, 1.0], 3.0, 10.0)
    plant.step(DT)
    assert np.isclose(plant.effort[5], 20.0)  # inertia 2 × 10 rad/s²
    assert np.allclose(plant.effort[:5], 0.0)


def test_gripper_speed_and_obstacle() -> None:
    plant = TrackingPlant()
    plant.reset(np.zeros(6), gripper=0.0)
    plant.set_gripper_target(0.8, 0.4)
    run(plant, 1.0)
    assert abs(plant.gripper_position - 0.4) < 1e-6  # 0.4 rad/s for 1 s
    assert plant.gripper_is_moving()
    run(plant, 1.2)
    assert abs(plant.gripper_position - 0.8) < 1e-9
    assert not plant.gripper_is_moving()
    plant.set_gripper_target(0.0, 1.0)
    run(plant, 1.0)
    plant.set_gripper_obstacle(0.3)
    plant.set_gripper_target(0.85, 1.0)
    run(plant, 1.0)
    assert abs(plant.gripper_position - 0.3) < 1e-9
    assert not plant.gripper_is_moving()

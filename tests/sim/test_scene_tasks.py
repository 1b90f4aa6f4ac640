"""The workcell scene loads and renders both cameras headless; each task's success test is sound."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from evo1_ros.sim.tasks import (
    TASK_NAMES,
    ObjectPose,
    apply_layout,
    make_task,
    read_scene_state,
    yaw_quat,
)
from evo1_ros.sim.workcell_scene import WorkcellModel
from fixtures.xarm import READY


@pytest.fixture(scope="module")
def workcell() -> WorkcellModel:
    return WorkcellModel()


def _data_at_ready(workcell: WorkcellModel) -> mujoco.MjData:
    data = workcell.new_data()
    data.qpos[workcell.arm_qpos] = READY
    data.ctrl[workcell.arm_actuators] = READY
    mujoco.mj_forward(workcell.model, data)
    return data


def _settle(workcell: WorkcellModel, data: mujoco.MjData, seconds: float = 0.4) -> None:
    for _ in range(int(seconds / workcell.model.opt.timestep)):
        mujoco.mj_step(workcell.model, data)


def test_scene_has_arm_gripper_objects_and_cameras(workcell):
    m = workcell.model
    assert m.nu == 7  # joint1..6 + drive_joint
    assert [m.actuator(i).name for i in range(m.nu)][-1] == "drive_joint"
    assert m.neq == 5  # the URDF's five mimic joints became equalities
    assert workcell.camera_names == ["base", "wrist"]
    assert np.isclose(m.actuator_forcerange[workcell.arm_actuators[0]][1], 50.0)


def test_both_cameras_render_headless_and_show_the_scene(workcell):
    data = _data_at_ready(workcell)
    task = make_task("pick_place_can", workcell.config)
    apply_layout(workcell, data, task.sample_layout(0))
    renderer = mujoco.Renderer(workcell.model, 64, 80)
    try:
        images = {}
        for cam in workcell.camera_names:
            renderer.update_scene(data, camera=cam)
            images[cam] = renderer.render().copy()
    finally:
        renderer.close()
    for cam, img in images.items():
        assert img.shape == (64, 80, 3) and img.dtype == np.uint8
        assert img.std() > 10.0, f"{cam} image is (nearly) uniform"
    assert not np.array_equal(images["base"], images["wrist"])
    # the red can is in the base view: some clearly red pixels
    base = images["base"].astype(int)
    assert np.any((base[..., 0] > 120) & (base[..., 1] < 60) & (base[..., 2] < 60))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_layout_is_seeded(workcell, name):
    task = make_task(name, workcell.config)
    a, b, c = task.sample_layout(7), task.sample_layout(7), task.sample_layout(8)
    assert set(a) == set(task.objects)
    for key in a:
        assert np.array_equal(a[key].pos, b[key].pos)
    assert any(not np.allclose(a[k].pos, c[k].pos) for k in a)


@pytest.mark.parametrize("name", TASK_NAMES)
@pytest.mark.parametrize("seed", [0, 1])
def test_initial_state_is_not_a_success(workcell, name, seed):
    task = make_task(name, workcell.config)
    data = _data_at_ready(workcell)
    apply_layout(workcell, data, task.sample_layout(seed))
    _settle(workcell, data)
    assert not task.success(read_scene_state(workcell, data))


def _hand_placed(workcell, name: str) -> tuple[dict[str, ObjectPose], bool]:
    """A solved layout of task `name` and whether physics should settle it first."""
    cfg = workcell.config
    h = cfg.can_height
    box = ObjectPose(np.array([0.40, -0.15, 0.0]), np.array([1.0, 0, 0, 0]))
    if name == "pick_place_can":
        return {"box": box, "can_a": ObjectPose(np.array([0.41, -0.14, 0.008 + h / 2]), yaw_quat(0.3))}, True
    if name == "can_stacking":
        base = ObjectPose(np.array([0.35, 0.1, h / 2]), yaw_quat(0.0))
        top = ObjectPose(np.array([0.355, 0.105, 1.5 * h + 0.001]), yaw_quat(1.0))
        return {"can_b": base, "can_a": top}, True
    if name == "pour_foam":
        tilt = math.radians(100)  # held over the box, mouth down-ish
        quat = np.array([math.cos(tilt / 2), math.sin(tilt / 2), 0.0, 0.0])
        return {"box": box, "cup": ObjectPose(np.array([0.40, -0.13, 0.15]), quat)}, False
    if name == "hand_delivery":
        hand = ObjectPose(np.array([0.48, -0.15, 0.0]), np.array([1.0, 0, 0, 0]))
        can = ObjectPose(np.array([0.48, -0.15, cfg.hand_height + h / 2 + 0.001]), yaw_quat(0.0))
        return {"hand": hand, "can_a": can}, True
    raise AssertionError(name)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_success_fires_on_a_hand_placed_solution(workcell, name):
    task = make_task(name, workcell.config)
    layout, settle = _hand_placed(workcell, name)
    data = _data_at_ready(workcell)
    apply_layout(workcell, data, layout)
    if settle:
        _settle(workcell, data)
    assert task.success(read_scene_state(workcell, data)), name


def test_near_misses_are_not_successes(workcell):
    cfg = workcell.config
    h = cfg.can_height
    box = ObjectPose(np.array([0.40, -0.15, 0.0]), np.array([1.0, 0, 0, 0]))
    # can standing right beside the box
    task = make_task("pick_place_can", cfg)
    data = _data_at_ready(workcell)
    apply_layout(workcell, data, {"box": box, "can_a": ObjectPose(np.array([0.40, 0.0, h / 2]), yaw_quat(0))})
    _settle(workcell, data)
    assert not task.success(read_scene_state(workcell, data))
    # cup over the box but upright: no pour
    task = make_task("pour_foam", cfg)
    apply_layout(workcell, data, {"box": box, "cup": ObjectPose(np.array([0.40, -0.15, 0.15]), yaw_quat(0))})
    assert not task.success(read_scene_state(workcell, data))
    # cans side by side: not stacked
    task = make_task("can_stacking", cfg)
    side = {
        "can_b": ObjectPose(np.array([0.35, 0.1, h / 2]), yaw_quat(0)),
        "can_a": ObjectPose(np.array([0.35, 0.17, h / 2]), yaw_quat(0)),
    }
    apply_layout(workcell, data, side)
    _settle(workcell, data)
    assert not task.success(read_scene_state(workcell, data))


def test_unknown_task_names_the_known_ones(workcell):
    with pytest.raises(ValueError, match="pick_place_can"):
        make_task("juggle", workcell.config)

"""SimWorld without ROS: seeded resets, latched success, reset-request parsing, renderer checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evo1_ros.sim.sim_world import SimSettings, SimWorld, parse_reset_request
from evo1_ros.sim.tasks import ObjectPose, yaw_quat


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (None, None)),
        ("pour_foam", ("pour_foam", None)),
        ("7", (None, 7)),
        ("can_stacking 3", ("can_stacking", 3)),
        ("task=hand_delivery seed=12", ("hand_delivery", 12)),
    ],
)
def test_parse_reset_request(text, expected):
    assert parse_reset_request(text) == expected


@pytest.mark.parametrize("text", ["juggle", "seed=x", "colour=red"])
def test_parse_reset_request_rejects_nonsense(text):
    with pytest.raises(ValueError):
        parse_reset_request(text)


def test_reset_is_seeded_and_success_is_latched():
    world = SimWorld(SimSettings(task="pick_place_can", seed=5))
    start = world.status()
    assert (start.task, start.seed, start.success, start.success_time) == ("pick_place_can", 5, False, None)
    json.dumps(start.as_dict())  # what ~/task_state publishes: plain JSON types only
    assert world.reset() == ("pick_place_can", 6)
    assert world.reset("hand_delivery", 5) == ("hand_delivery", 5)
    assert world.reset("pick_place_can", 5) == ("pick_place_can", 5)
    again = world.status()
    assert np.allclose(again.objects["can_a"], start.objects["can_a"])
    # hand-place the can into the box, let physics settle it: success, and its time is latched
    box = np.array(start.objects["box"][:3])
    h = world.settings.scene.can_height
    can = ObjectPose(box + np.array([0.0, 0.0, 0.008 + h / 2]), yaw_quat(0.0))
    world.plant.place_objects({"box": ObjectPose(box, np.array([1.0, 0, 0, 0])), "can_a": can})
    for _ in range(100):
        world.plant.step(0.004)
    solved = world.status()
    assert solved.success and solved.success_time is not None
    world.plant.place_objects(world.task.sample_layout(5))
    later = world.status()
    assert not later.success and later.success_time == solved.success_time


def test_renderer_rejects_sizes_beyond_the_offscreen_buffer():
    world = SimWorld(SimSettings())
    with pytest.raises(ValueError, match="max_render_size"):
        world.make_renderer(4096, 64)
    renderer = world.make_renderer(32, 24)
    try:
        _, images = renderer.render(["wrist"])
        assert images["wrist"].shape == (24, 32, 3)
        with pytest.raises(ValueError, match="unknown camera"):
            renderer.render(["top"])
    finally:
        renderer.close()

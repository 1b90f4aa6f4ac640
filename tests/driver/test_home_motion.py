"""`home` ends at rest on its goal without overshoot (issue 13 item 11): `ArmDriver` (both streamers,
tests/driver/conftest.py) against the loopback controller through the real xArm SDK, no ROS. A linear
trajectory's abrupt end used to make the capped stream run past the goal by v^2/2a (0.030 rad for
home at half the velocity cap) and come back."""

from __future__ import annotations

import threading

import numpy as np

from evo1_ros.control.limits import ARM_JOINTS
from evo1_ros.polling import wait_until

START = np.array([0.5, -0.3, -0.6, 0.4, 0.7, -0.5])


def test_home_reaches_its_goal_at_rest_without_overshoot(controller, ready):
    driver = ready
    goal = np.asarray(driver.config.home_position, dtype=float)
    driver.submit(list(ARM_JOINTS), [1.5], [START.tolist()], None, None)
    assert wait_until(lambda: np.allclose(controller.q, START, atol=2e-3), 15), controller.q
    # the command itself has arrived (and so rests) before home is asked for
    assert wait_until(lambda: np.allclose(driver.commanded_positions()[:6], START, atol=1e-12), 10)

    log: list[np.ndarray] = []
    lock = threading.Lock()

    def listener(now: float, dt: float, cmd: np.ndarray) -> None:
        with lock:
            log.append(cmd[:6].copy())

    driver.add_command_listener(listener)
    driver.home()
    assert wait_until(lambda: np.allclose(controller.q, goal, atol=1e-3), 20), controller.q

    def settled() -> bool:
        with lock:
            tail = list(log[-20:])
        return len(tail) == 20 and all(np.array_equal(t, tail[0]) for t in tail)

    assert wait_until(settled, 10)
    with lock:
        q = np.array(log)
    direction = np.sign(goal - START)
    # how far each joint went past the goal, in its direction of travel (0 = never passed it)
    overshoot = np.max((q - goal) * direction, axis=0)
    assert np.all(overshoot <= 1e-9), overshoot
    np.testing.assert_allclose(q[-1], goal, atol=1e-12)  # the last command is the goal, at rest
    # every joint moves monotonically towards the goal and all of them arrive together
    progress = (q - START) * direction
    assert np.all(np.diff(progress, axis=0) >= -1e-12)
    arrive = [int(np.argmax(np.abs(q[:, j] - goal[j]) <= 1e-9)) for j in range(6)]
    assert max(arrive) - min(arrive) <= 1, arrive

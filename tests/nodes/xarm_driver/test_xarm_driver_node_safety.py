"""xarm_driver ROS wiring of the issue 13 fixes: stamp checks (item 7), the stop latch and `resume`
service in driver_status (item 2), and the `accepted_trajectory` topic (item 12, docs/architecture.md §3.3)."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.duration import Duration
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from evo1_ros.control.limits import JointLimits
from evo1_ros.control.trajectory import validate
from evo1_ros.polling import wait_until
from fixtures.ros import Collector, call
from fixtures.xarm import status_values, trajectory

ARM = [f"joint{i}" for i in range(1, 7)]


@pytest.fixture
def io(ros, driver_node):
    node = ros.node("driver_safety_client")
    pub = node.create_publisher(JointTrajectory, "/xarm/joint_trajectory", 10)
    status = Collector(node, DiagnosticStatus, "/xarm/driver_status")
    accepted = Collector(node, JointTrajectory, "/xarm/accepted_trajectory")
    assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
    return node, pub, status, accepted


def stamp_in(node, seconds: float):
    return (node.get_clock().now() + Duration(nanoseconds=int(seconds * 1e9))).to_msg()


def seconds_in(text: str) -> float:
    """The first 'N.NNN s' figure of a rejection reason."""
    match = re.search(r"(-?\d+\.\d+) s", text)
    assert match, text
    return float(match.group(1))


def rejected_with(driver, before: int, text: str) -> bool:
    st = driver.status()
    return st.trajectories_rejected > before and text in st.last_rejection


def test_stale_and_future_stamps_are_rejected_naming_the_clock_difference(io, controller, driver_node):
    node, pub, _, _ = io
    driver = driver_node.driver
    before = driver.status().trajectories_rejected
    # ended 3 s ago: JTC rejects it; executing it would jump to the last point, skipping the waypoints
    pub.publish(trajectory(ARM, [(0.5, [0.2] * 6), (1.0, [0.3, 0, 0, 0, 0, 0])], stamp=stamp_in(node, -4.0)))
    assert wait_until(lambda: rejected_with(driver, before, "ended"), 5), driver.status()
    assert abs(seconds_in(driver.status().last_rejection) - 3.0) < 0.3  # names the clock difference
    before = driver.status().trajectories_rejected
    # sender's clock 2 s ahead (limit max_stamp_ahead 0.5 s)
    pub.publish(trajectory(ARM, [(1.0, [0.3, 0, 0, 0, 0, 0])], stamp=stamp_in(node, 2.0)))
    assert wait_until(lambda: rejected_with(driver, before, "ahead"), 5), driver.status()
    assert abs(seconds_in(driver.status().last_rejection) - 2.0) < 0.3
    assert driver.status().trajectories_accepted == 0
    assert controller.counters()["servoj_received"] == 0 or np.allclose(controller.q, 0.0, atol=1e-9)
    # a small lead and a start in the recent past (trajectory still running) are fine
    pub.publish(trajectory(ARM, [(1.0, [0.1, 0, 0, 0, 0, 0])], stamp=stamp_in(node, 0.2)))
    assert wait_until(lambda: abs(controller.q[0] - 0.1) < 2e-3, 8)
    pub.publish(trajectory(ARM, [(1.0, [0.0] * 6)], stamp=stamp_in(node, -0.3)))
    assert wait_until(lambda: abs(controller.q[0]) < 2e-3, 8)
    assert driver.status().trajectories_accepted == 2


def test_stop_latch_and_resume_service_in_driver_status(io, controller, driver_node):
    node, pub, status, _ = io
    assert call(node, Trigger, "/xarm/stop").success
    assert wait_until(
        lambda: status.last() is not None and status_values(status.last())["stop_latched"] == "true", 5
    )
    assert "resume" in status.last().message
    before = driver_node.driver.status().trajectories_rejected
    pub.publish(trajectory(ARM, [(1.0, [0.2, 0, 0, 0, 0, 0])]))
    assert wait_until(lambda: driver_node.driver.status().trajectories_rejected > before, 5)
    response = call(node, Trigger, "/xarm/resume")
    assert response.success, response.message
    assert wait_until(lambda: status_values(status.last())["stop_latched"] == "false", 5)
    pub.publish(trajectory(ARM, [(1.0, [0.2, 0, 0, 0, 0, 0])]))
    assert wait_until(lambda: abs(controller.q[0] - 0.2) < 2e-3, 8)


def test_accepted_trajectory_is_what_the_driver_runs(io, controller, driver_node):
    node, pub, _, accepted = io
    assert wait_until(lambda: node.count_publishers("/xarm/accepted_trajectory") > 0, 10)
    driver = driver_node.driver
    names = [*ARM, "drive_joint"]
    start = stamp_in(node, 0.1)
    sent = trajectory(
        ["drive_joint", *reversed(ARM)],  # any order in; robot order out
        [(0.6, [0.2, 0, 0, 0, 0, 0, 0.3]), (1.2, [0.4, 0, 0, 0, 0, 0, 0.6])],
        velocities=[[0.3, 0, 0, 0, 0, 0, 0.5], [0, 0, 0, 0, 0, 0, 0]],
        stamp=start,
    )
    pub.publish(sent)
    assert wait_until(lambda: len(accepted) >= 1, 5)
    msg = accepted.last()
    assert list(msg.joint_names) == names
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (start.sec, start.nanosec)
    expected = validate(
        list(sent.joint_names),
        [0.6, 1.2],
        [list(p.positions) for p in sent.points],
        JointLimits.from_yaml(),
        [list(p.velocities) for p in sent.points],
    )
    got = np.array([p.positions for p in msg.points])
    assert np.allclose(got, expected.positions) and np.allclose(
        [p.velocities for p in msg.points], expected.velocities
    )
    assert [p.time_from_start.nanosec for p in msg.points] == [600_000_000, 200_000_000]
    # a rejected trajectory is never published
    count = len(accepted)
    pub.publish(trajectory(ARM, [(1.0, [0.1, 0, 9.0, 0, 0, 0])]))
    assert wait_until(lambda: driver.status().trajectories_rejected >= 1, 5)
    # a stop mid-motion publishes one point where the command stream came to rest
    pub.publish(trajectory(ARM, [(3.0, [1.5, 0, 0, 0, 0, 0])]))
    assert wait_until(lambda: len(accepted) == count + 1, 5)
    assert wait_until(lambda: controller.q[0] > 0.6, 8)
    assert call(node, Trigger, "/xarm/stop").success
    assert wait_until(lambda: len(accepted) == count + 2, 5)
    rest = accepted.last()
    assert len(rest.points) == 1 and rest.points[0].time_from_start.sec == 0
    assert rest.points[0].time_from_start.nanosec == 0
    assert np.allclose(rest.points[0].positions, driver.commanded_positions(), atol=1e-9)
    assert list(rest.joint_names) == names
    assert 0.6 < rest.points[0].positions[0] < 1.5


def test_a_stamped_empty_trajectory_still_stops_the_arm(io, controller, driver_node):
    """An empty trajectory is JTC's "stop": it must brake the arm whatever its stamp (a stop that a
    stale-stamp check drops would leave the arm running)."""
    node, pub, _, _ = io
    driver = driver_node.driver
    pub.publish(trajectory(ARM, [(4.0, [0.6, 0, 0, 0, 0, 0])]))
    assert wait_until(lambda: controller.q[0] > 0.05, 8)
    rejected = driver.status().trajectories_rejected
    pub.publish(trajectory(ARM, [], stamp=stamp_in(node, -1.0)))  # stamped a second in the past

    def at_rest() -> bool:
        q = controller.q[0]
        time.sleep(0.3)
        return abs(controller.q[0] - q) < 1e-6

    assert wait_until(at_rest, 10)
    assert controller.q[0] < 0.4, controller.q  # braked, well short of the 0.6 goal
    assert driver.status().trajectories_rejected == rejected

"""System test: `evo1 launch xarm_driver sim:=true` starts the loopback controller and the driver as
real processes; a trajectory sent over ROS moves the (simulated) arm and joint_states report it."""

from __future__ import annotations

import signal
import sys

import numpy as np
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from evo1_ros.polling import wait_until
from evo1_ros.sim.loopback_host import free_loopback_host
from fixtures.ros import Collector
from fixtures.xarm import joint_vector, trajectory

ARM = [f"joint{i}" for i in range(1, 7)]


def test_launch_driver_with_loopback_controller(ros, spawn):
    host = free_loopback_host()
    launch = spawn(
        [sys.executable, "-m", "evo1_ros.cli.main", "launch", "xarm_driver", f"robot_ip:={host}"],
        name="launch",
    )
    node = ros.node("launch_test_client")
    states = Collector(node, JointState, "/xarm/joint_states")
    assert states.wait(10, timeout=30), launch.output()
    pub = node.create_publisher(JointTrajectory, "/xarm/joint_trajectory", 10)
    assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
    goal = [0.3, -0.2, -0.4, 0.1, 0.5, 0.2]

    # The driver may still be bringing the arm up: resend until it accepts.
    def reached() -> bool:
        pub.publish(trajectory(ARM, [(0.8, goal)]))
        return np.allclose(joint_vector(states.last(), ARM), goal, atol=2e-3)

    assert wait_until(reached, 20, interval=0.5), launch.output()
    launch.send_signal(signal.SIGINT)
    assert wait_until(lambda: launch.proc.poll() is not None, 20), launch.output()
    out = launch.output()
    assert launch.proc.returncode == 0, out
    assert "[xarm_driver]" in out and "[xarm_loopback_controller]" in out

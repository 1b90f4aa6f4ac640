"""Evo-1 policy + xArm6 driver (+ loopback controller); nodes and arguments in config/launch/xarm6_policy.yaml."""

from evo1_ros.launcher.description import load_description
from evo1_ros.launcher.ros_launch import launch_description
from evo1_ros.nodes.robot_state import prefer_robot_state_publisher


def generate_launch_description():
    return launch_description(prefer_robot_state_publisher(load_description("xarm6_policy")))

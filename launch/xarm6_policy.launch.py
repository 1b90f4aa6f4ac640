"""Evo-1 policy + xArm6 driver (+ loopback controller); nodes and arguments in config/launch/xarm6_policy.yaml."""

from evo1_ros.launcher.ros_launch import launch_description_from_yaml


def generate_launch_description():
    return launch_description_from_yaml("xarm6_policy")

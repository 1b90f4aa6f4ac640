"""Teleop + LeRobot v2.1 recording on the xArm6; nodes and arguments in config/launch/teleop_record.yaml."""

from evo1_ros.launcher.ros_launch import launch_description_from_yaml


def generate_launch_description():
    return launch_description_from_yaml("teleop_record")

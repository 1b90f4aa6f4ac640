"""xArm6 driver (+ loopback controller with sim:=true); nodes and arguments in config/launch/xarm_driver.yaml."""

from evo1_ros.launcher.ros_launch import launch_description_from_yaml


def generate_launch_description():
    return launch_description_from_yaml("xarm_driver")

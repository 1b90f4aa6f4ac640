"""MuJoCo workcell (sim node + its loopback xArm controller) + xArm6 driver; see config/launch/sim.yaml."""

from evo1_ros.launcher.ros_launch import launch_description_from_yaml


def generate_launch_description():
    return launch_description_from_yaml("sim")

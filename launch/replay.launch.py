"""Play a bag into evo1_policy (use_sim_time, the bag's /clock) and record its outputs; see config/launch/replay.yaml."""

from evo1_ros.launcher.ros_launch import launch_description_from_yaml


def generate_launch_description():
    return launch_description_from_yaml("replay")

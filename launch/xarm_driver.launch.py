"""xArm6 driver (+ loopback controller with sim:=true) and the robot description / TF publisher.

Nodes and arguments in config/launch/xarm_driver.yaml; robot_state_publisher replaces the project's
robot_state node when this ROS install has it.
"""

from evo1_ros.launcher.description import load_description
from evo1_ros.launcher.ros_launch import launch_description
from evo1_ros.nodes.robot_state import prefer_robot_state_publisher


def generate_launch_description():
    return launch_description(prefer_robot_state_publisher(load_description("xarm_driver")))

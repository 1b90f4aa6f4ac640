"""Launch descriptions in YAML, run by `evo1 launch` or turned into launch_ros actions by launch/*.launch.py.

One YAML file per node set (config/launch/NAME.yaml) is the single source of truth, so the process
launcher (for the PyPI ROS wheels, which have no `ros2 launch`) and the standard ROS launch files
cannot drift apart.
"""

"""evo1_ros: Evo-1 VLA on a UFACTORY xArm6 with ROS 2."""

__version__ = "0.1.0"

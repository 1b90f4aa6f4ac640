"""Loopback xArm controller and (later) the MuJoCo scene. No ROS imports."""

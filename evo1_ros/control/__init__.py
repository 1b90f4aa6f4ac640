"""Interpolation, safety limits, kinematics, units. No ROS, no torch (layer rule, DESIGN.md §2)."""

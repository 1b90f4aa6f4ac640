"""Thin ROS 2 nodes wiring topics and services to the pure modules."""

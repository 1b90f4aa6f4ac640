"""Interpolation, safety limits, kinematics, units. No ROS, no torch (layer rule, docs/architecture.md §2).

* ``limits``: JointLimits + GripperPulseMap from config/xarm6_limits.yaml
* ``trajectory``: validate() JointTrajectory-like arrays into a Trajectory; time interpolation
* ``servo_stream``: ServoStreamer, the capped per-cycle command stream of the driver (JTC semantics)
* ``gripper_command``: GripperCommandFilter (dedup + rate limit of gripper commands)
* ``urdf`` / ``kinematics``: URDF reader, SerialChain (FK, Jacobian, DLS IK, twist steps)
"""

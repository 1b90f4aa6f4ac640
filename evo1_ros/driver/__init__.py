"""xArm6 driver core on the official xarm-python-sdk: connection, bring-up/recovery, servo streaming.

No ROS here: `evo1_ros.nodes.xarm_driver` wires it to topics and services, and the tests drive it
directly against the loopback controller.
"""

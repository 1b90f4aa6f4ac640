"""xArm6 driver core on the official xarm-python-sdk: connection, bring-up/recovery, servo streaming.

No ROS here: `evo1_ros.nodes.xarm_driver` wires it to topics and services. The tests in tests/driver/
drive `ArmDriver` directly against the loopback controller (real SDK, both streamers); the node
tests in tests/nodes/xarm_driver/ only check the ROS wiring.
"""

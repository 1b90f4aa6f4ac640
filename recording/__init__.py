"""recording: LeRobot v2.1 datasets from ROS 2 topics and bags. Never imports torch.

``dataset/`` is the file format (writer, reader, validator and `evo1 dataset`), with no ROS;
``recorder/`` is the recorder's sampling and episode logic, with no ROS, shared by the live
``recorder_node.py`` / ``keyboard_node.py`` here and by ``bag/`` (`evo1 bag`, bag to LeRobot).
Only ``*_node.py`` files import rclpy.
"""

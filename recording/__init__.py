"""recording: LeRobot v2.1 datasets from ROS 2 topics and bags. Never imports torch.

``dataset/`` is the file format (writer, reader, validator and `evo1 dataset`), with no ROS;
``recorder/`` is the recorder's sampling and episode logic, with no ROS, shared by the live
``recorder`` node (evo1_ros/nodes/recorder.py) and by ``bag/`` (bag I/O, bag to LeRobot).
Nothing here imports rclpy: the ROS nodes (recorder, recorder_keyboard, bag_record, bag_play)
live in evo1_ros/nodes/ and import this package, never the other way round.
"""

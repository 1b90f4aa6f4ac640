"""The recorder's logic without ROS: frame clock, stream sampling, command tracking, frame assembly,
the episode state machine and dataset setup. Used by ``evo1_ros/nodes/recorder.py`` and by the bag
converter (``recording/bag/to_lerobot.py``), so the live and offline paths choose the same frames."""

"""rosbag2 tools (`evo1 bag record|play|to-lerobot`): standard bags (metadata v9, type hashes), no ros2 CLI needed."""

"""The LeRobot v2.1 dataset format on disk: layout, features, writer, reader, validator, stats,
parquet/video I/O and the `evo1 dataset` CLI. No ROS, no torch (rules in docs/lerobot_v21.md)."""

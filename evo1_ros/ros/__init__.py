"""ROS helpers: image <-> numpy, approximate-time synchroniser, QoS presets, parameter helpers, stamps."""

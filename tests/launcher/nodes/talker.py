"""Test node: publishes std_msgs/String 'hello N' on `chatter` at `rate` Hz (a parameter)."""

import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from std_msgs.msg import String

from evo1_ros.ros.node_runner import release_signal_handlers


def main() -> int:
    rclpy.init(args=sys.argv)
    node = rclpy.create_node("talker")
    rate = node.declare_parameter("rate", 20.0).value
    prefix = node.declare_parameter("prefix", "hello").value
    pub = node.create_publisher(String, "chatter", 10)
    count = [0]

    def tick() -> None:
        count[0] += 1
        pub.publish(String(data=f"{prefix} {count[0]}"))

    node.create_timer(1.0 / rate, tick)
    node.get_logger().info(f"talking at {rate} Hz on {pub.topic_name}")
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        print("talker: clean shutdown", flush=True)
    finally:
        release_signal_handlers()  # as every evo1_ros node: a hung DDS teardown still ends on SIGTERM
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Test node: prints every String on `chatter`; with `exit_after` > 0 it exits with `exit_code`
after that many messages (to test that a required node's failure stops the launch)."""

import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from std_msgs.msg import String

from evo1_ros.ros.node_runner import release_signal_handlers


class Done(Exception):
    pass


def main() -> int:
    rclpy.init(args=sys.argv)
    node = rclpy.create_node("listener")
    exit_after = node.declare_parameter("exit_after", 0).value
    exit_code = node.declare_parameter("exit_code", 0).value
    heard = [0]

    def on_msg(msg: String) -> None:
        heard[0] += 1
        print(f"heard: {msg.data}", flush=True)
        if exit_after and heard[0] >= exit_after:
            raise Done

    node.create_subscription(String, "chatter", on_msg, 10)
    rc = 0
    try:
        rclpy.spin(node)
    except Done:
        rc = exit_code
    except (KeyboardInterrupt, ExternalShutdownException):
        print("listener: clean shutdown", flush=True)
    finally:
        release_signal_handlers()  # as every evo1_ros node: a hung DDS teardown still ends on SIGTERM
        node.destroy_node()
        rclpy.try_shutdown()
    return rc


if __name__ == "__main__":
    sys.exit(main())

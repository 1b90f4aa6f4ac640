"""Test node run through `evo1_ros.ros.node_runner.run_node`; argv[1] picks the behaviour.

* ``ok``: a plain node; ``close()`` prints ``closed``.
* ``bad``: the factory raises ValueError (a bad parameter).
* ``hang``: ``destroy_node`` blocks in C code for 60 s, like a hung DDS teardown.
* ``publish``: ``close()`` publishes a last message (as the policy's hold and the driver's rest report
  do) and prints ``published on close`` once it went out.
"""

import ctypes
import sys

from rclpy.node import Node
from std_msgs.msg import String

from evo1_ros.ros.node_runner import run_node


class RunnerTestNode(Node):
    def __init__(self, hang: bool, publish: bool = False) -> None:
        super().__init__("runner_test")
        self.hang = hang
        self.publish = publish
        self.pub = self.create_publisher(String, "~/last_words", 10)
        self.create_timer(0.05, lambda: None)
        self.get_logger().info("up")

    def close(self) -> None:
        if self.publish:
            self.pub.publish(String(data="holding"))
            print("published on close", flush=True)
        print("closed", flush=True)

    def destroy_node(self) -> None:
        if self.hang:
            print("hanging in teardown", flush=True)
            ctypes.CDLL(None).sleep(60)  # in C, GIL released: only a signal's default action ends it
        super().destroy_node()


def factory(mode: str):
    def make() -> Node:
        if mode == "bad":
            raise ValueError("parameter rate must be > 0")
        return RunnerTestNode(hang=mode == "hang", publish=mode == "publish")

    return make


if __name__ == "__main__":
    mode = sys.argv[1]
    sys.exit(run_node(factory(mode), "runner_test", args=sys.argv[:1] + sys.argv[2:]))

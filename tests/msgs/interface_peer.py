"""Peer process for the evo1_msgs tests: publishes one filled message of every type at 10 Hz and
serves SetTask and StartEpisode, so the test process checks what crossed the process boundary."""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from evo1_msgs.msg import ActionChunk, PolicyStatus, RecorderStatus
from evo1_msgs.srv import SetTask, StartEpisode


def filled_messages(node: Node) -> dict[str, object]:
    stamp = node.get_clock().now().to_msg()
    chunk = ActionChunk()
    chunk.header.stamp = stamp
    chunk.joint_names = [f"joint{i}" for i in range(1, 7)] + ["drive_joint"]
    chunk.step_period = 1.0 / 30.0
    chunk.horizon = 3
    chunk.action_dim = 7
    chunk.actions = [0.001 * i for i in range(21)]
    chunk.task = "pick up the can"
    chunk.inference_latency = 0.061
    chunk.chunk_index = 2**40 + 5
    status = PolicyStatus()
    status.header.stamp = stamp
    status.state = PolicyStatus.HOLDING
    status.task = "pour foam"
    status.fault = "observation stale (0.80 s > 0.25 s)"
    status.inference_rate = 14.5
    status.command_rate = 30.0
    status.last_inference_latency = 0.07
    status.mean_inference_latency = 0.065
    status.observation_age = 0.8
    status.chunks_computed = 12
    status.commands_sent = 340
    status.observations_dropped = 3
    status.steps_clamped = 1
    rec = RecorderStatus()
    rec.header.stamp = stamp
    rec.state = RecorderStatus.RECORDING
    rec.dataset_dir = "/data/xarm6_cans"
    rec.task = "stack the cans"
    rec.episode_index = 4
    rec.episodes_saved = 4
    rec.frames_recorded = 120
    rec.frames_dropped = 2
    rec.stream_names = ["front", "wrist", "joint_states"]
    rec.stream_ages = [0.01, 0.02, -1.0]
    rec.episode_duration = 4.0
    rec.episode_time_limit = 60.0
    rec.error = ""
    return {"action_chunk": chunk, "policy_status": status, "recorder_status": rec}


class Peer(Node):
    def __init__(self) -> None:
        super().__init__("interface_peer")
        self.pubs = {
            "action_chunk": self.create_publisher(ActionChunk, "action_chunk", 10),
            "policy_status": self.create_publisher(PolicyStatus, "policy_status", 10),
            "recorder_status": self.create_publisher(RecorderStatus, "recorder_status", 10),
        }
        self.create_service(SetTask, "set_task", self.on_set_task)
        self.create_service(StartEpisode, "start_episode", self.on_start_episode)
        self.create_timer(0.1, self.tick)
        self.get_logger().info("peer ready")

    def tick(self) -> None:
        for key, msg in filled_messages(self).items():
            self.pubs[key].publish(msg)

    def on_set_task(self, request: SetTask.Request, response: SetTask.Response) -> SetTask.Response:
        response.success = bool(request.task.strip())
        response.message = request.task.upper() if response.success else "task must not be empty"
        return response

    def on_start_episode(
        self, request: StartEpisode.Request, response: StartEpisode.Response
    ) -> StartEpisode.Response:
        response.success = True
        response.message = f"recording '{request.task}'"
        response.episode_index = 7
        return response


def main() -> int:
    rclpy.init(args=sys.argv)
    node = Peer()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

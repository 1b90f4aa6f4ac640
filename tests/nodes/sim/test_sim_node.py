"""System test: `evo1 launch sim` starts the sim node (MuJoCo + loopback controller + cameras) and the
real driver as processes; the cameras publish real images, resets re-lay the scene, and a trajectory
sent to the driver moves the simulated arm through the real SDK."""

from __future__ import annotations

import json
import signal
import sys

import numpy as np
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from evo1_msgs.srv import SetTask
from evo1_ros.control.kinematics import SerialChain
from evo1_ros.polling import wait_until
from evo1_ros.ros.image import image_to_numpy
from evo1_ros.ros.qos import SENSOR
from evo1_ros.sim.loopback_host import free_loopback_host
from fixtures.ros import Collector
from fixtures.xarm import READY

ARM = [f"joint{i}" for i in range(1, 7)]


def _state(collector: Collector) -> dict:
    return json.loads(collector.last().data)


def _call(node, client, text: str) -> SetTask.Response:
    assert client.wait_for_service(timeout_sec=20)
    future = client.call_async(SetTask.Request(task=text))
    assert wait_until(future.done, 20)
    return future.result()


def test_sim_launch_cameras_reset_and_driver_motion(ros, spawn):
    host = free_loopback_host()
    launch = spawn(
        [
            sys.executable, "-m", "evo1_ros.cli.main", "launch", "sim", f"robot_ip:={host}",
            "image_width:=64", "image_height:=48", "camera_rate:=5.0", "seed:=4",
        ],
        name="launch",
    )  # fmt: skip
    node = ros.node("sim_test_client")
    base = Collector(node, Image, "/cameras/base/image_raw", SENSOR)
    wrist = Collector(node, Image, "/cameras/wrist/image_raw", SENSOR)
    states = Collector(node, String, "/sim/task_state")
    joints = Collector(node, JointState, "/xarm/joint_states")
    assert base.wait(2, timeout=60) and wrist.wait(2, timeout=30), launch.output()
    for msg in (base.last(), wrist.last()):
        assert (msg.encoding, msg.width, msg.height) == ("rgb8", 64, 48)
        assert image_to_numpy(msg).std() > 10.0, "blank camera image"
    assert states.wait(1, timeout=20), launch.output()
    first = _state(states)
    assert (first["task"], first["seed"], first["success"]) == ("pick_place_can", 4, False)
    assert set(first["objects"]) == {"can_a", "box"}

    reset = node.create_client(SetTask, "/sim/reset")
    reply = _call(node, reset, "can_stacking 3")
    assert reply.success and reply.message == "task=can_stacking seed=3"
    assert wait_until(lambda: _state(states)["task"] == "can_stacking", 10)
    assert set(_state(states)["objects"]) == {"can_a", "can_b"}
    bad = _call(node, reset, "juggle")
    assert not bad.success and "pick_place_can" in bad.message

    # the driver streams to the simulated controller; the physics arm follows
    assert joints.wait(5, timeout=30), launch.output()
    pub = node.create_publisher(JointTrajectory, "/xarm/joint_trajectory", 10)
    assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
    goal = READY + np.array([0.3, 0.1, -0.1, 0.0, 0.1, 0.4])

    def send_and_check() -> bool:
        msg = JointTrajectory(joint_names=ARM)
        msg.points = [JointTrajectoryPoint(positions=goal.tolist(), time_from_start=Duration(sec=1))]
        pub.publish(msg)
        last = joints.last()
        index = {n: i for i, n in enumerate(last.name)}
        return np.allclose([last.position[index[n]] for n in ARM], goal, atol=5e-3)

    assert wait_until(send_and_check, 30, interval=0.5), launch.output()
    # the scene's own grasp point (physics bodies, not the controller's report) is where FK puts it
    flange = SerialChain.from_urdf().fk(goal)
    expected = flange[:3, 3] + flange[:3, 2] * 0.13
    assert wait_until(lambda: np.allclose(_state(states)["grasp_point"], expected, atol=0.01), 10)

    launch.send_signal(signal.SIGINT)
    assert wait_until(lambda: launch.proc.poll() is not None, 30), launch.output()
    assert launch.proc.returncode == 0, launch.output()

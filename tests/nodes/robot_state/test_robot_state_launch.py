"""The driver launch also publishes the robot description and TF (issue 16 item 2).

`evo1 launch xarm_driver` (real processes, loopback controller) brings up robot_state next to the
driver; with a ROS install that has robot_state_publisher, launch files run that instead.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import yaml
from std_msgs.msg import String

from evo1_ros.control.urdf import default_urdf_path
from evo1_ros.launcher.description import load_description, parse_cli_arguments, resolve
from evo1_ros.nodes.robot_state import TF_QOS, prefer_robot_state_publisher
from evo1_ros.polling import wait_until
from evo1_ros.ros.qos import LATCHED
from evo1_ros.sim.loopback_host import free_loopback_host
from fixtures.ros import Collector
from tf2_msgs.msg import TFMessage


def _fake_ros_prefix(root: Path) -> Path:
    exe = root / "lib" / "robot_state_publisher" / "robot_state_publisher"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return root


def test_robot_state_publisher_takes_the_place_of_robot_state(tmp_path: Path) -> None:
    spec = load_description("xarm_driver")
    assert prefer_robot_state_publisher(spec, prefixes=[str(tmp_path)]) is spec  # none installed

    swapped = prefer_robot_state_publisher(spec, prefixes=[str(_fake_ros_prefix(tmp_path / "ros"))])
    nodes = {n.name: n for n in resolve(swapped, parse_cli_arguments(swapped, []))}
    assert "robot_state" not in nodes
    rsp = nodes["robot_state_publisher"]
    assert (rsp.package, rsp.executable, rsp.namespace) == (
        "robot_state_publisher",
        "robot_state_publisher",
        "",
    )
    assert rsp.remappings == [("joint_states", "/xarm/joint_states")]
    params = yaml.safe_load(Path(rsp.param_files[-1]).read_text())
    assert params["/**"]["ros__parameters"]["robot_description"] == default_urdf_path().read_text()
    shared = yaml.safe_load(Path(rsp.param_files[0]).read_text())["/**"]["ros__parameters"]
    assert {"publish_frequency", "ignore_timestamp", "frame_prefix"} <= set(shared)


@pytest.mark.ros
def test_evo1_launch_xarm_driver_publishes_description_and_tf(ros, spawn) -> None:
    launch = spawn(
        [
            sys.executable,
            "-m",
            "evo1_ros.cli.main",
            "launch",
            "xarm_driver",
            f"robot_ip:={free_loopback_host()}",
        ],
        name="launch",
    )
    node = ros.node("launch_tf_client")
    description = Collector(node, String, "/robot_description", LATCHED)
    tf = Collector(node, TFMessage, "/tf", TF_QOS)
    assert description.wait(1, timeout=40), launch.output()
    assert description.last().data == default_urdf_path().read_text()
    assert tf.wait(5, timeout=40), launch.output()
    frames = {t.child_frame_id for m in tf.snapshot() for t in m.transforms}
    assert {f"link{i}" for i in range(1, 7)} | {"left_outer_knuckle", "right_finger"} <= frames, frames
    launch.send_signal(signal.SIGINT)
    assert wait_until(lambda: launch.proc.poll() is not None, 20), launch.output()
    assert launch.proc.returncode == 0, launch.output()
    assert "[robot_state]" in launch.output()

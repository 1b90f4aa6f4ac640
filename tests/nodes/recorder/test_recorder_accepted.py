"""The recorder records what the driver accepted (issue 13 item 12) and reports clock problems (item 8)."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from evo1_msgs.msg import RecorderStatus
from evo1_msgs.srv import StartEpisode
from evo1_ros.nodes.recorder import RecorderNode
from evo1_ros.polling import wait_until
from evo1_ros.ros.image import numpy_to_image
from evo1_ros.ros.qos import COMMAND, SENSOR
from fixtures.datasets import HEIGHT, JOINTS, WIDTH
from fixtures.recorder import COLORS, Rig, rows_match
from fixtures.ros import Collector, call
from recording.dataset.reader import LeRobotReader

pytestmark = pytest.mark.ros
REJECTED = 0.777  # value of every joint in the commands the driver did not accept


def test_commands_the_driver_did_not_accept_are_not_recorded(ros, make_recorder, tmp_path):
    """Raw commands on joint_trajectory (e.g. rejected while disabled) never become the action."""
    client = ros.node("test_client")
    rig = Rig(ros.node("rig"))  # publishes the accepted stream (/xarm/accepted_trajectory)
    raw = client.create_publisher(JointTrajectory, "/xarm/joint_trajectory", COMMAND)
    client.create_timer(
        0.01,
        lambda: raw.publish(
            JointTrajectory(
                joint_names=list(JOINTS), points=[JointTrajectoryPoint(positions=[REJECTED] * len(JOINTS))]
            )
        ),
    )
    make_recorder(camera_max_age=2.0, state_max_age=2.0)
    status = Collector(client, RecorderStatus, "/recorder/status")
    assert wait_until(lambda: status.last() is not None and min(status.last().stream_ages) >= 0, 15)
    assert "/xarm/accepted_trajectory" in status.last().stream_names
    assert call(client, StartEpisode, "/recorder/start_episode", StartEpisode.Request(task="t")).success
    assert wait_until(lambda: status.last().frames_recorded >= 15, 20), status.last()
    saved = call(client, Trigger, "/recorder/save_episode")
    assert saved.success, saved.message
    action = LeRobotReader(tmp_path / "ds").episode_columns(0)["action"]
    assert not np.any(np.isclose(action, REJECTED, atol=1e-6))
    assert rows_match(action, rig.commands)


def test_camera_stamped_in_the_future_is_stale_and_reported(ros, make_recorder):
    """stamp_source=header: a camera 60 s ahead must not count as fresh (it did, forever)."""
    client = ros.node("test_client")
    rig_node = ros.node("rig")
    Rig(rig_node, cameras=("cam0",))
    future_pub = rig_node.create_publisher(Image, "/cameras/cam1/image_raw", SENSOR)
    img = np.broadcast_to(np.array(COLORS["cam1"], np.uint8), (HEIGHT, WIDTH, 3)).copy()

    def future_camera() -> None:
        ns = rig_node.get_clock().now().nanoseconds + 60 * 10**9
        future_pub.publish(numpy_to_image(img, "rgb8", Time(sec=ns // 10**9, nanosec=ns % 10**9), "cam1"))

    rig_node.create_timer(1 / 30, future_camera)
    make_recorder(stamp_source="header")
    status = Collector(client, RecorderStatus, "/recorder/status")
    assert call(client, StartEpisode, "/recorder/start_episode", StartEpisode.Request(task="t")).success
    assert wait_until(lambda: status.last() is not None and status.last().frames_dropped >= 10, 15)
    st = status.last()
    ages = dict(zip(st.stream_names, st.stream_ages))
    assert st.frames_recorded == 0
    assert ages["/cameras/cam1/image_raw"] < -50  # reported as stamped ~60 s in the future
    assert 0 <= ages["/cameras/cam0/image_raw"] < 5


def test_with_the_real_driver_only_accepted_commands_are_recorded(ros, make_recorder, tmp_path):
    """The xarm_driver node (loopback controller, real SDK) publishes accepted_trajectory; a command
    it rejects (outside the joint limits) is published on joint_trajectory but never recorded."""
    from evo1_ros.driver.arm_driver import DriverState
    from evo1_ros.nodes.xarm_driver import XArmDriverNode
    from evo1_ros.sim.loopback_controller import LoopbackController
    from evo1_ros.sim.loopback_host import free_loopback_host

    controller = LoopbackController(host=free_loopback_host()).start()
    try:
        driver = ros.add(
            XArmDriverNode(
                context=ros.context,
                namespace="/xarm",
                parameter_overrides=[
                    Parameter("robot_ip", value=controller.host),
                    Parameter("status_rate", value=10.0),
                ],
            )
        )
        assert wait_until(lambda: driver.driver.state == DriverState.READY, 15), driver.driver.status()
        client = ros.node("test_client")
        cam = client.create_publisher(Image, "/cameras/cam0/image_raw", SENSOR)
        img = np.broadcast_to(np.array(COLORS["cam0"], np.uint8), (HEIGHT, WIDTH, 3)).copy()
        client.create_timer(1 / 30, lambda: cam.publish(numpy_to_image(img, "rgb8", None, "cam0")))
        cmd = client.create_publisher(JointTrajectory, "/xarm/joint_trajectory", COMMAND)
        accepted = Collector(client, JointTrajectory, "/xarm/accepted_trajectory", COMMAND)
        make_recorder(cameras=["cam0"], camera_max_age=2.0, state_max_age=2.0)
        status = Collector(client, RecorderStatus, "/recorder/status")
        assert wait_until(lambda: cmd.get_subscription_count() > 0, 10)

        def send(positions, seconds):
            msg = JointTrajectory(joint_names=list(JOINTS))
            ns = int(seconds * 1e9)
            msg.points = [JointTrajectoryPoint(positions=[float(v) for v in positions])]
            msg.points[0].time_from_start.sec, msg.points[0].time_from_start.nanosec = divmod(ns, 10**9)
            cmd.publish(msg)

        goal = [0.3, -0.2, -0.4, 0.2, 0.3, -0.1, 0.4]
        send(goal, 0.8)
        assert accepted.wait(1, 10)
        assert call(client, StartEpisode, "/recorder/start_episode", StartEpisode.Request(task="t")).success
        assert wait_until(lambda: status.last() is not None and status.last().frames_recorded >= 10, 20)
        rejected = [0.3, 2.5, -0.4, 0.2, 0.3, -0.1, 0.4]  # joint2 beyond its 2.02 rad limit
        n_acc, n_rej = len(accepted), driver.driver.status().trajectories_rejected
        send(rejected, 0.5)
        assert wait_until(lambda: driver.driver.status().trajectories_rejected > n_rej, 10)
        frames = status.last().frames_recorded
        assert wait_until(lambda: status.last().frames_recorded >= frames + 20, 20)
        saved = call(client, Trigger, "/recorder/save_episode")
        assert saved.success, saved.message
        assert len(accepted) == n_acc  # the driver did not accept it...
        action = LeRobotReader(tmp_path / "ds").episode_columns(0)["action"]
        assert np.max(action[:, 1]) < 0.1  # ...so it is nowhere in the recorded actions
        np.testing.assert_allclose(action[-1], goal, atol=1e-6)  # the arm's last accepted goal, held
    finally:
        for node in list(ros._nodes):
            if isinstance(node, RecorderNode):
                continue
            ros.remove(node)
        controller.stop()

"""evo1_policy with the real tiny Evo-1: images + joint states in -> a valid trajectory out; task; start/stop."""

from __future__ import annotations

import numpy as np
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from evo1_msgs.msg import ActionChunk, PolicyStatus
from evo1_msgs.srv import SetTask
from evo1_ros.control.limits import JointLimits
from evo1_ros.control.trajectory import validate
from evo1_ros.polling import wait_until
from evo1_ros.ros.qos import LATCHED
from fixtures.policy import ALL_JOINTS
from fixtures.ros import Collector, call
from fixtures.sensors import SensorPublisher
from fixtures.xarm import points


def test_trajectory_task_switch_start_stop(ros, checkpoint, make_policy_node):
    # Generous ages: a loaded machine may delay this process's publishers (staleness: test_policy_faults).
    node = make_policy_node(checkpoint, task="pick up the red can", max_state_age=1.0, max_obs_age=1.0)
    client = ros.node("policy_test_client")
    sensors = SensorPublisher(client)
    trajs = Collector(client, JointTrajectory, "/xarm/joint_trajectory")
    chunks = Collector(client, ActionChunk, "/evo1_policy/action_chunk")
    status = Collector(client, PolicyStatus, "/evo1_policy/status")
    try:
        # Not started: the node is IDLE and sends nothing, however long the inputs flow.
        assert status.wait(5, timeout=20)
        assert status.last().state == PolicyStatus.IDLE
        assert len(trajs) == 0 and len(chunks) == 0

        assert call(client, Trigger, "/evo1_policy/start").success
        assert trajs.wait(2, timeout=60), status.last()
        assert wait_until(lambda: status.last().state == PolicyStatus.RUNNING, 10), status.last()
        limits = JointLimits.from_yaml()
        cap = limits.max_velocity * node.p.safety.velocity_fraction
        for msg in trajs.snapshot():
            assert list(msg.joint_names) == list(ALL_JOINTS)
            t, q, v = points(msg)
            assert len(t) > 0 and np.all(np.isfinite(q)) and np.all(np.isfinite(v))
            validate(msg.joint_names, t, q, limits, v)  # exactly the driver's acceptance check
            assert np.all(np.abs(v) <= cap + 1e-9)
            assert np.all(np.abs(np.diff(q[:, :6], axis=0)) <= node.p.safety.max_step_change + 1e-9)
        chunk = chunks.last()
        assert chunk.task == "pick up the red can"
        assert (chunk.horizon, chunk.action_dim) == (50, 7)
        actions = np.array(chunk.actions).reshape(50, 7)
        assert np.all(np.isfinite(actions))
        # The chunk is stamped with its observation's time, before it was published.
        assert (
            chunk.header.stamp.sec * 1e9 + chunk.header.stamp.nanosec <= client.get_clock().now().nanoseconds
        )

        # Task switch, by topic and by service: the next chunks carry the new instruction.
        pub = client.create_publisher(String, "/evo1_policy/task", LATCHED)
        assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
        pub.publish(String(data="stack the cans"))
        assert wait_until(lambda: chunks.last().task == "stack the cans", 60), chunks.last().task
        req = SetTask.Request(task="open the gripper")
        assert call(client, SetTask, "/evo1_policy/set_task", req).success
        assert wait_until(lambda: chunks.last().task == "open the gripper", 60)
        assert not call(client, SetTask, "/evo1_policy/set_task", SetTask.Request(task="  ")).success

        # Stop: an empty trajectory (hold), IDLE, and no further commands.
        assert call(client, Trigger, "/evo1_policy/stop").success
        assert wait_until(lambda: len(trajs.last().points) == 0, 10)
        assert wait_until(lambda: status.last().state == PolicyStatus.IDLE, 10)
        n = len(trajs)
        assert not wait_until(lambda: len(trajs) > n, 1.5)
        st = status.last()
        assert st.chunks_computed >= 3 and st.commands_sent >= 2 and st.task == "open the gripper"
    finally:
        sensors.close()

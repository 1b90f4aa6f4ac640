"""System test: `evo1 launch xarm6_policy sim:=false loopback:=true` starts the bare loopback controller
(no MuJoCo, no cameras), the driver and the policy (tiny Evo-1) as separate processes; with images from a test publisher the measured joints go
where the model's chunks say, within the caps, and ~/stop leaves the arm resting."""

from __future__ import annotations

import signal
import sys

import numpy as np
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from evo1_msgs.msg import ActionChunk, PolicyStatus
from evo1_ros.control.limits import JointLimits
from evo1_ros.control.trajectory import validate
from evo1_ros.polling import wait_until
from evo1_ros.sim.loopback_host import free_loopback_host
from fixtures.policy import ALL_JOINTS
from fixtures.ros import Collector, call
from fixtures.sensors import SensorPublisher
from fixtures.xarm import points


def measured(msg: JointState) -> np.ndarray:
    index = {n: i for i, n in enumerate(msg.name)}
    return np.array([msg.position[index[n]] for n in ALL_JOINTS])


def test_launch_policy_moves_the_loopback_arm(ros, spawn, checkpoint):
    host = free_loopback_host()
    launch = spawn(
        [
            sys.executable,
            "-m",
            "evo1_ros.cli.main",
            "launch",
            "xarm6_policy",
            "sim:=false",
            "loopback:=true",
            f"robot_ip:={host}",
            f"checkpoint:={checkpoint}",
            "task:=pick up the can",
        ],
        name="launch",
    )
    client = ros.node("policy_system_client")
    sensors = SensorPublisher(client, publish_joints=False)
    try:
        states = Collector(client, JointState, "/xarm/joint_states")
        trajs = Collector(client, JointTrajectory, "/xarm/joint_trajectory")
        chunks = Collector(client, ActionChunk, "/evo1_policy/action_chunk")
        status = Collector(client, PolicyStatus, "/evo1_policy/status")
        assert states.wait(10, timeout=60), launch.output()
        assert status.wait(1, timeout=120), launch.output()
        start = measured(states.last())
        assert np.allclose(start[:6], 0.0, atol=1e-3)

        # The driver may still be bringing the arm up (start is refused until it is READY).
        assert wait_until(lambda: call(client, Trigger, "/evo1_policy/start").success, 60, 1.0), (
            launch.output()
        )
        assert chunks.wait(3, timeout=120), (status.last(), launch.output()[-3000:])

        # The arm goes where the chunks say: near the mean of the newest chunk's arm targets.
        def arrived() -> bool:
            target = np.array(chunks.last().actions).reshape(-1, 7)[:, :6].mean(axis=0)
            return bool(np.all(np.abs(measured(states.last())[:6] - target) < 0.03))

        assert wait_until(arrived, 60), (measured(states.last()), status.last(), launch.output()[-3000:])
        moved = measured(states.last())[:6] - start[:6]
        assert np.all(np.abs(moved) > 0.1)  # every arm joint travelled (targets are 0.15-0.2 rad away)
        assert wait_until(lambda: status.last().chunks_computed >= 3, 10), status.last()
        st = status.last()
        # RUNNING, or HOLDING for a moment between chunks (or for a late input on a loaded machine).
        assert st.state in (PolicyStatus.RUNNING, PolicyStatus.HOLDING), (st.state, st.fault)
        assert st.commands_sent >= 1, st

        # Every command was within the caps the driver checks, and the measured speed within its cap.
        limits = JointLimits.from_yaml()
        for msg in trajs.snapshot():
            if msg.points:
                t, q, v = points(msg)
                validate(msg.joint_names, t, q, limits, v)
                assert np.all(np.abs(v) <= 0.5 * limits.max_velocity + 1e-9)  # velocity_fraction 0.5
        samples = states.snapshot()
        speeds = np.array([np.abs(np.array(m.velocity)[:6]) for m in samples if len(m.velocity) >= 6])
        assert speeds.max() <= 1.0 + 0.05  # max_velocity of config/xarm6_limits.yaml

        # ~/stop: the arm comes to rest and stays there.
        assert call(client, Trigger, "/evo1_policy/stop").success
        assert wait_until(lambda: len(trajs.last().points) == 0, 10)
        assert wait_until(lambda: status.last().state == PolicyStatus.IDLE, 10)
        n = len(states)
        assert states.wait(n + 100, timeout=30)
        rest = np.array([measured(m)[:6] for m in states.snapshot()[-50:]])
        after = [len(m.points) for m in trajs.snapshot()]
        assert np.ptp(rest, axis=0).max() < 2e-3, (np.ptp(rest, axis=0), after[-5:], launch.output()[-4000:])
    finally:
        sensors.close()
    launch.send_signal(signal.SIGINT)
    assert wait_until(lambda: launch.proc.poll() is not None, 30), launch.output()
    out = launch.output()
    assert launch.proc.returncode == 0, out[-3000:]
    for name in ("xarm_loopback_controller", "xarm_driver", "evo1_policy"):
        assert f"[{name}]" in out

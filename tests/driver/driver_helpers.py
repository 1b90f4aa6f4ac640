"""Helpers shared by the driver tests."""

from __future__ import annotations

import numpy as np


def joint_vector(msg, names) -> np.ndarray:
    """Positions of `names` from a JointState, in that order."""
    index = {n: i for i, n in enumerate(msg.name)}
    return np.array([msg.position[index[n]] for n in names])


def trajectory(names, points, velocities=None, stamp=None):
    """A JointTrajectory from (time_from_start, positions) pairs; `stamp`: builtin_interfaces Time."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory()
    msg.joint_names = list(names)
    if stamp is not None:
        msg.header.stamp = stamp
    for i, (t, pos) in enumerate(points):
        pt = JointTrajectoryPoint()
        pt.positions = [float(v) for v in pos]
        if velocities is not None:
            pt.velocities = [float(v) for v in velocities[i]]
        pt.time_from_start = Duration(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))
        msg.points.append(pt)
    return msg


def call(node, srv_type, name, request=None):
    """Call a service and wait for the reply (fails the test after 20 s)."""
    from ros_harness import wait_until

    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(request or srv_type.Request())
    assert wait_until(future.done, 20)
    return future.result()


def status_values(msg) -> dict[str, str]:
    """The key/value pairs of a DiagnosticStatus as a dict."""
    return {kv.key: kv.value for kv in msg.values}

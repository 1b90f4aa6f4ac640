"""Fixtures: a loopback xArm controller on its own 127.x address and a driver node talking to it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from rclpy.parameter import Parameter
from ros_harness import wait_until

from evo1_ros.driver.arm_driver import DriverState
from evo1_ros.sim.loopback_config import LoopbackConfig
from evo1_ros.sim.loopback_controller import LoopbackController
from evo1_ros.sim.loopback_host import free_loopback_host
from evo1_ros.sim.tracking_plant import TrackingPlant


class RecordingPlant(TrackingPlant):
    """The default plant, also keeping (receive time, target) of every position target it is given."""

    def __init__(self) -> None:
        cfg = LoopbackConfig()
        super().__init__(6, cfg.max_joint_speed, cfg.max_joint_acc, cfg.joint_inertia)
        self.targets: list[tuple[float, np.ndarray]] = []

    def set_position_target(self, q, max_velocity, max_acceleration) -> None:
        self.targets.append((time.monotonic(), np.asarray(q, dtype=float).copy()))
        super().set_position_target(q, max_velocity, max_acceleration)


@pytest.fixture
def controller() -> Iterator[LoopbackController]:
    ctrl = LoopbackController(host=free_loopback_host(), plant=RecordingPlant()).start()
    try:
        yield ctrl
    finally:
        ctrl.stop()


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "streamer(kind): run the driver_node fixture with this streamer ('thread' or 'process')"
        " instead of the configured default (for tests of one streamer's internals)",
    )


@pytest.fixture
def driver_node(request, ros, controller):
    """The xarm_driver node in-process (namespace /xarm), brought up against `controller`."""
    from evo1_ros.nodes.xarm_driver import XArmDriverNode

    overrides = [
        Parameter("robot_ip", value=controller.host),
        Parameter("status_rate", value=10.0),
        Parameter("reconnect_period", value=0.3),
    ]
    marker = request.node.get_closest_marker("streamer")
    if marker is not None:
        overrides.append(Parameter("streamer", value=str(marker.args[0])))
    node = XArmDriverNode(context=ros.context, namespace="/xarm", parameter_overrides=overrides)
    ros.add(node)
    assert wait_until(lambda: node.driver.state == DriverState.READY, 15), node.driver.status()
    yield node


@pytest.fixture
def make_controller():
    """Factory: start loopback controllers with a given `LoopbackConfig`; all stopped afterwards."""
    started: list[LoopbackController] = []

    def _make(config: LoopbackConfig | None = None) -> LoopbackController:
        ctrl = LoopbackController(host=free_loopback_host(), config=config, plant=RecordingPlant()).start()
        started.append(ctrl)
        return ctrl

    yield _make
    for ctrl in started:
        ctrl.stop()

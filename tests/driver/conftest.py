"""The ArmDriver rig of tests/driver: a real `ArmDriver` over the real xArm SDK against the loopback
controller (tests/fixtures/xarm.py), no ROS.

`make_driver` builds drivers with the `streamer` fixture's streamer, which runs every test with both
("thread" and "process", issue 15: the guarantees do not depend on where the loop runs). A test about
one streamer's internals narrows it with ``@pytest.mark.parametrize("streamer", ["thread"])``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from evo1_ros.control.limits import GripperPulseMap, JointLimits
from evo1_ros.driver.arm_driver import ArmDriver, DriverConfig, DriverState
from evo1_ros.driver.xarm_session import SessionConfig
from evo1_ros.polling import wait_until
from evo1_ros.sim.loopback_controller import LoopbackController


@pytest.fixture(params=["thread", "process"])
def streamer(request: pytest.FixtureRequest) -> str:
    """The streamer `make_driver` uses unless a test passes its own."""
    return str(request.param)


@pytest.fixture
def make_driver(streamer: str) -> Iterator[Callable[..., ArmDriver]]:
    """Factory: a started ArmDriver talking to a controller (`DriverConfig` fields as keywords,
    `session={...}` for `SessionConfig` ones); every driver is shut down after the test."""
    drivers: list[ArmDriver] = []

    def _make(ctrl: LoopbackController, gripper: bool = True, **config: object) -> ArmDriver:
        session = SessionConfig(host=ctrl.host, gripper=gripper, **config.pop("session", {}))  # type: ignore[arg-type]
        config.setdefault("streamer", streamer)
        config.setdefault("reconnect_period", 0.3)
        cfg = DriverConfig(session=session, **config)  # type: ignore[arg-type]
        driver = ArmDriver(cfg, JointLimits.from_yaml(), GripperPulseMap.from_yaml() if gripper else None)
        drivers.append(driver)
        driver.start()
        return driver

    yield _make
    for driver in drivers:
        driver.shutdown()


@pytest.fixture
def ready(controller: LoopbackController, make_driver: Callable[..., ArmDriver]) -> ArmDriver:
    """A driver with the gripper, READY on `controller`."""
    driver = make_driver(controller)
    assert wait_until(lambda: driver.state == DriverState.READY, 15), driver.status()
    return driver

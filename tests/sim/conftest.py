"""Fixtures for the loopback xArm controller tests: a controller on its own 127.x address and SDK clients.

Each controller gets a free loopback address, so tests can run in parallel (pytest-xdist) although
the SDK always uses ports 502/30001/30002/30003. Binding those ports needs root (or
`sysctl net.ipv4.ip_unprivileged_port_start=0`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from evo1_ros.sim.loopback_config import LoopbackConfig
from evo1_ros.sim.loopback_controller import LoopbackController


@pytest.fixture(autouse=True, scope="session")
def _no_uds_diversion() -> None:
    """The SDK silently prefers /tmp/xarmcontroller_uds_<port> over TCP; such a file would bypass us."""
    for port in (502, 30001, 30002, 30003):
        path = f"/tmp/xarmcontroller_uds_{port}"
        assert not os.path.exists(path), (
            f"{path} exists and would divert the SDK away from the loopback controller"
        )


@pytest.fixture
def make_controller() -> Iterator[Callable[..., LoopbackController]]:
    """Factory: start controllers (with an optional config) and stop them all after the test."""
    started: list[LoopbackController] = []

    def _make(config: LoopbackConfig | None = None, **kwargs: object) -> LoopbackController:
        ctrl = LoopbackController(config=config, **kwargs).start()  # type: ignore[arg-type]
        started.append(ctrl)
        return ctrl

    yield _make
    for ctrl in started:
        ctrl.stop()


@pytest.fixture
def controller(make_controller: Callable[..., LoopbackController]) -> LoopbackController:
    """One running controller with the default configuration."""
    return make_controller()


@pytest.fixture
def connect() -> Iterator[Callable[..., object]]:
    """Factory: `XArmAPI(host, is_radian=True, **kwargs)`; every client is disconnected afterwards."""
    from xarm.wrapper import XArmAPI

    arms: list[XArmAPI] = []

    def _connect(host: str, **kwargs: object) -> XArmAPI:
        arm = XArmAPI(host, is_radian=True, **kwargs)
        arms.append(arm)
        return arm

    yield _connect
    for arm in arms:
        arm.disconnect()

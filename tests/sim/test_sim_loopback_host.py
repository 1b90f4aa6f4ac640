"""Loopback-only binding and free address selection."""

from __future__ import annotations

import socket

import pytest

from evo1_ros.sim.loopback_controller import LoopbackController
from evo1_ros.sim.loopback_host import free_loopback_host, host_is_free, validate_loopback_host


@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.10", "8.8.8.8", "0.0.0.0", "::1", "robot.local", ""])
def test_non_loopback_addresses_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        validate_loopback_host(host)
    with pytest.raises(ValueError):
        LoopbackController(host=host)


def test_loopback_addresses_are_accepted() -> None:
    assert validate_loopback_host("127.0.0.5") == "127.0.0.5"
    assert validate_loopback_host("127.200.3.4") == "127.200.3.4"
    assert validate_loopback_host("localhost") == "127.0.0.1"


def test_free_host_is_bindable_and_taken_hosts_are_detected() -> None:
    host = free_loopback_host()
    assert host.startswith("127.")
    assert host_is_free(host)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind((host, 30002))
        blocker.listen(1)
        assert not host_is_free(host)
    finally:
        blocker.close()


def test_two_controllers_run_side_by_side(make_controller) -> None:
    a = make_controller()
    b = make_controller()
    assert a.host != b.host
    with pytest.raises(OSError):
        LoopbackController(host=a.host).start()  # same address: ports taken

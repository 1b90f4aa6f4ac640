"""The loopback controller tests talk to it through the real SDK (fixtures `controller`,
`make_controller`, `connect` of tests/fixtures/xarm.py); here only the guard that the SDK really
reaches it."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _no_uds_diversion() -> None:
    """The SDK silently prefers /tmp/xarmcontroller_uds_<port> over TCP; such a file would bypass us."""
    for port in (502, 30001, 30002, 30003):
        path = f"/tmp/xarmcontroller_uds_{port}"
        assert not os.path.exists(path), (
            f"{path} exists and would divert the SDK away from the loopback controller"
        )

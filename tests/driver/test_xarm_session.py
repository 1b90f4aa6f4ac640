"""XArmSession, the checked SDK wrapper, through the real SDK against the loopback controller."""

from __future__ import annotations

import logging
import threading

from evo1_ros.driver.xarm_session import SessionConfig, XArmSession


def test_connect_and_close(controller):
    session = XArmSession(SessionConfig(host=controller.host, gripper=False))
    session.connect()
    assert session.connected
    session.close()
    assert not session.connected
    session.close()  # a second close is a no-op


def test_close_returns_even_when_the_sdk_disconnect_hangs(controller, caplog):
    """The SDK's disconnect joins its reader threads, and its report reader can block forever (a
    race inside the SDK seen on a loaded machine). close() must not hang the driver with it."""
    session = XArmSession(SessionConfig(host=controller.host, gripper=False, disconnect_timeout=0.5))
    session.connect()
    arm = session._arm
    real_disconnect = arm.disconnect
    release, finished = threading.Event(), threading.Event()

    def stuck_disconnect() -> None:  # what the SDK does in that state: blocks (here until released)
        release.wait(60)
        real_disconnect()
        finished.set()

    arm.disconnect = stuck_disconnect
    caplog.set_level(logging.WARNING, logger="evo1_ros.xarm_session")
    session.close()
    assert not finished.is_set()  # close() returned while the SDK's disconnect was still stuck
    assert not session.connected
    assert "disconnect did not finish" in caplog.text
    # the driver can reconnect at once
    session.connect()
    assert session.connected
    session.close()
    release.set()


def test_servo_error_codes_name_the_right_joint():
    """C10 is the generic servo error; C11..C17 are joints 1..7 (the SDK's ControllerErrorCodeMap)."""
    from evo1_ros.driver.error_codes import CONTROLLER_ERRORS

    assert "joint" not in CONTROLLER_ERRORS[10].split("(")[0] and "joint 1" not in CONTROLLER_ERRORS[10]
    for n in range(1, 7):
        assert CONTROLLER_ERRORS[10 + n].endswith(f"(joint {n})")

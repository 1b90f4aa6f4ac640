"""Helpers shared by the loopback controller tests (polling, the SDK bring-up sequence, raw frames)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll `predicate` until it is truthy or `timeout` seconds pass; returns the final truth value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


def bring_up(arm: object, mode: int) -> None:
    """The bring-up sequence of docs/xarm_protocol.md §1, then wait until the report shows the mode and readiness."""
    assert arm.clean_error() == 0
    assert arm.clean_warn() == 0
    assert arm.motion_enable(True) == 0
    assert arm.set_mode(mode) == 0
    assert arm.set_state(0) == 0
    assert wait_until(lambda: arm.mode == mode and arm.state in (1, 2), 3.0), (arm.mode, arm.state)


def raw_connect(host: str, timeout: float = 2.0) -> socket.socket:
    """A plain TCP connection to the command port, for frames the SDK would never send."""
    sock = socket.create_connection((host, 502), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_reply(sock: socket.socket) -> bytes:
    """Read one reply frame (6-byte header + LEN bytes)."""
    header = _read_exact(sock, 6)
    length = int.from_bytes(header[4:6], "big")
    return header + _read_exact(sock, length)


def _read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed by the controller")
        data += chunk
    return data


def connection_closed(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True when the peer closes `sock` (EOF or reset) within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False

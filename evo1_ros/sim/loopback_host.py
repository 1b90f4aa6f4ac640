"""Loopback addresses for the fake xArm controller.

The xArm SDK always connects to the fixed ports 502/30001/30002/30003, so two controllers can only
run side by side (parallel tests, several simulated arms) on different IP addresses. Linux routes the
whole 127.0.0.0/8 block to the loopback interface, so every 127.x.y.z address is usable without setup.
"""

from __future__ import annotations

import ipaddress
import os
import random
import socket
from collections.abc import Iterable

#: ports the SDK uses: command socket and the three report sockets (normal, rich, real)
XARM_PORTS: tuple[int, ...] = (502, 30001, 30002, 30003)


def validate_loopback_host(host: str) -> str:
    """Return `host` as a dotted IPv4 loopback address, or raise ValueError.

    The controller is a test double: refusing non-loopback addresses makes sure it can never be
    reached from (or impersonate a robot on) a real network.
    """
    if host == "localhost":
        host = "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 address: {host!r} (use a 127.x.y.z loopback address)") from exc
    if addr.version != 4 or not addr.is_loopback:
        raise ValueError(
            f"refusing to bind {host}: the loopback xArm controller only binds 127.0.0.0/8 addresses"
        )
    return str(addr)


def host_is_free(host: str, ports: Iterable[int] = XARM_PORTS) -> bool:
    """True when every port in `ports` can be bound on `host` right now."""
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def free_loopback_host(ports: Iterable[int] = XARM_PORTS, attempts: int = 500) -> str:
    """Pick a 127.x.y.z address whose xArm ports are all free.

    The second octet is derived from the process id so that parallel test workers start in
    different parts of the block; the rest is random. A race with another process binding the same
    address between this check and the real bind is still possible, so `LoopbackController.start()`
    retries with a fresh address when it was given none.
    """
    port_list = tuple(ports)
    rng = random.Random()
    second = 16 + os.getpid() % 200
    for _ in range(attempts):
        host = f"127.{second}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        if host_is_free(host, port_list):
            return host
        second = 16 + rng.randint(0, 199)
    raise RuntimeError(f"no free loopback address found for ports {port_list} after {attempts} tries")

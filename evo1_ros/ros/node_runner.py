"""The `main()` of a node executable: init, build the node, spin, shut down cleanly on Ctrl-C.

A node that cannot start (bad parameter, missing file) prints one line saying why and exits 2
instead of dumping a traceback; `close()` of the node, if it has one, runs before the executor stops.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

STARTUP_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError)


def run_node(
    factory: Callable[[], Node],
    name: str,
    *,
    args: list[str] | None = None,
    startup_errors: tuple[type[Exception], ...] = STARTUP_ERRORS,
    num_threads: int = 4,
) -> int:
    """Run the node `factory()` builds on a multi-threaded executor until SIGINT/SIGTERM; exit code."""
    rclpy.init(args=sys.argv if args is None else args)
    try:
        node = factory()
    except startup_errors as exc:
        print(f"[{name}] cannot start: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=num_threads)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        close = getattr(node, "close", None)
        if callable(close):
            close()
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0

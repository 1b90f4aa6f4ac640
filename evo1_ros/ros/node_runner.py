"""The `main()` of a node executable: init, build the node, spin, shut down cleanly on Ctrl-C.

A node that cannot start (bad parameter, missing file) prints one line saying why and exits 2
instead of dumping a traceback. SIGINT/SIGTERM stop the executor but leave the ROS context up, so the
node's `close()` (if it has one) can still publish its last words — the policy's hold, the driver's
rest report — before the context goes down. Once `close()` has run, SIGINT/SIGTERM end the process
again (see `release_signal_handlers`).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions, uninstall_signal_handlers

STARTUP_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError)


def release_signal_handlers() -> None:
    """Give SIGINT/SIGTERM their default action back (call after the node's own cleanup).

    rclpy's handlers turn both signals into a context shutdown, which does nothing once the context
    is down, so a process whose DDS teardown hangs (a rare rcl/Fast DDS race, seen on loaded
    machines) could then only be SIGKILLed. With the defaults back, a second Ctrl-C or a launcher's
    SIGTERM ends it. Only possible from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    uninstall_signal_handlers()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def spin_until_shutdown(executor: Executor) -> None:
    """``executor.spin()`` that returns quietly on Ctrl-C or context shutdown.

    Besides KeyboardInterrupt and ExternalShutdownException, rclpy can raise a bare RCLError
    ("failed to initialize wait set: the given context is not valid") when Ctrl-C's shutdown lands
    while the executor builds its wait set; with the context down that is a shutdown too.
    """
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        if executor.context.ok():
            raise


def run_node(
    factory: Callable[[], Node],
    name: str,
    *,
    args: list[str] | None = None,
    startup_errors: tuple[type[Exception], ...] = STARTUP_ERRORS,
    num_threads: int = 4,
) -> int:
    """Run the node `factory()` builds on a multi-threaded executor until SIGINT/SIGTERM; exit code."""
    # rclpy's own handlers would shut the context down at once, before close() could publish anything.
    rclpy.init(args=sys.argv if args is None else args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    _catch_stop_signals(stop)
    try:
        node = factory()
    except startup_errors as exc:
        print(f"[{name}] cannot start: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    except BaseException:
        rclpy.try_shutdown()
        raise
    executor = MultiThreadedExecutor(num_threads=num_threads)
    executor.add_node(node)
    try:
        if not stop.is_set():  # a stop signal may have come while the node was starting up
            _spin_until(executor, stop)
    finally:
        close = getattr(node, "close", None)
        if callable(close):
            close()
        release_signal_handlers()  # our cleanup is done: from here on a stop request may end us
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _catch_stop_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set `stop` (the spin loop notices within one poll period).

    No need to keep the old handlers: `release_signal_handlers` gives both signals their default
    action after the node's cleanup, which is what the process wants from then on.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())


def _spin_until(executor: Executor, stop: threading.Event, poll: float = 0.1) -> None:
    """Spin until `stop` is set or the context goes down; quiet on the same races as spin_until_shutdown."""
    try:
        while not stop.is_set() and executor.context.ok():
            executor.spin_once(timeout_sec=poll)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        if executor.context.ok():
            raise

"""Test harness for ROS 2 tests: isolated domains, in-process nodes, real node subprocesses.

Every ROS test gets its own ROS_DOMAIN_ID (distinct across pytest-xdist workers), loopback-only
discovery, a temporary ROS_LOG_DIR and the Fast DDS SHM profile, so tests can run in parallel on one
machine and never leave the loopback interface.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FASTDDS_PROFILE = REPO / "config" / "fastdds_shm.xml"

# Start at a per-process random offset so two pytest sessions on one machine (a developer's run
# beside CI, or parallel runs) are unlikely to share a domain at the same moment.
_counter = itertools.count(random.Random(os.getpid() ^ time.time_ns()).randrange(10_000))


def _worker_index() -> tuple[int, int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return int(worker.lstrip("gw") or 0), max(count, 1)


def next_domain_id() -> int:
    """A domain id no other concurrently running test uses (1..200, split between xdist workers).

    Fast DDS maps domain ids to UDP ports; ids up to 232 are valid, we keep below 201.
    """
    index, count = _worker_index()
    span = 200 // count
    return 1 + index * span + next(_counter) % span


def ros_environment(domain_id: int, log_dir: Path) -> dict[str, str]:
    """Environment variables a ROS test (and its subprocesses) runs with."""
    return {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOG_DIR": str(log_dir),
        "FASTDDS_DEFAULT_PROFILES_FILE": str(FASTDDS_PROFILE),
        "AMENT_PREFIX_PATH": os.pathsep.join(
            p for p in (os.environ.get("AMENT_PREFIX_PATH", ""), sys.prefix) if p
        ),
        "PYTHONUNBUFFERED": "1",
    }


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.01) -> bool:
    """Poll `predicate` until truthy or `timeout` seconds pass; returns the last truthiness."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class RosTestContext:
    """One rclpy context on the test's domain with a background multi-threaded executor.

    Nodes created with `node()` or added with `add()` are spun until `close()`, which destroys them
    and shuts the context down, so no test leaks DDS participants into the next.
    """

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor

        self.domain_id = domain_id
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self._nodes: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="ros-test-executor", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception as exc:  # surface callback errors in the test output, keep spinning
                print(f"[ros-test-executor] callback raised: {exc!r}", file=sys.stderr)

    def node(self, name: str, **kwargs: Any) -> Any:
        """A plain rclpy node in this context, spun in the background."""
        import rclpy

        return self.add(rclpy.create_node(name, context=self.context, **kwargs))

    def add(self, node: Any) -> Any:
        self.executor.add_node(node)
        self._nodes.append(node)
        return node

    def remove(self, node: Any) -> None:
        self.executor.remove_node(node)
        self._nodes.remove(node)
        node.destroy_node()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for node in reversed(self._nodes):
            self.executor.remove_node(node)
            node.destroy_node()
        self._nodes.clear()
        self.executor.shutdown(timeout_sec=2)
        if self.context.ok():
            self.context.try_shutdown()


class Collector:
    """Subscription that stores every message it gets (thread-safe), for assertions."""

    def __init__(self, node: Any, msg_type: Any, topic: str, qos: Any = 10) -> None:
        self.messages: list[Any] = []
        self._lock = threading.Lock()
        self.sub = node.create_subscription(msg_type, topic, self._cb, qos)

    def _cb(self, msg: Any) -> None:
        with self._lock:
            self.messages.append(msg)

    def __len__(self) -> int:
        with self._lock:
            return len(self.messages)

    def last(self) -> Any:
        with self._lock:
            return self.messages[-1] if self.messages else None

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self.messages)

    def wait(self, count: int = 1, timeout: float = 10.0) -> bool:
        return wait_until(lambda: len(self) >= count, timeout)


class NodeProcess:
    """A real node (or any program) in its own process, output captured to a log file.

    `stop()` sends SIGINT like Ctrl-C (rclpy nodes shut down cleanly on it), then escalates to
    SIGTERM and SIGKILL so a hung node cannot hang the suite.
    """

    def __init__(self, argv: Sequence[str], env: dict[str, str], log_path: Path, cwd: Path = REPO) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            env={**os.environ, **env},
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, pattern: str, timeout: float = 15.0) -> re.Match[str] | None:
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def check() -> bool:
            match = regex.search(self.output())
            if match:
                found.append(match)
            return bool(match) or self.proc.poll() is not None

        wait_until(check, timeout, interval=0.05)
        return found[0] if found else None

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, wait, escalate; returns the exit code."""
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig) if sig == signal.SIGKILL else self.proc.send_signal(sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        rc = self.proc.wait()
        self._log.close()
        return rc


def python_script_argv(path: Path | str, *args: str) -> list[str]:
    """argv that runs a Python file with this interpreter (the venv's)."""
    return [sys.executable, str(path), *args]

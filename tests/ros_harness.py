"""Test harness for ROS 2 tests: isolated domains, in-process nodes, real node subprocesses.

Every ROS test gets its own ROS_DOMAIN_ID (leased exclusively among all test processes on the machine,
so xdist workers and parallel pytest sessions never share one), loopback-only discovery, a temporary ROS_LOG_DIR and the Fast DDS SHM profile, so tests can run in parallel on one
machine and never leave the loopback interface.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from fixtures.waiting import wait_until

REPO = Path(__file__).resolve().parent.parent
FASTDDS_PROFILE = REPO / "config" / "fastdds_shm.xml"

DOMAIN_IDS = range(1, 201)  # Fast DDS maps domain ids to UDP ports; up to 232 are valid
_LEASE_DIR = Path(tempfile.gettempdir()) / "evo1_ros_test_domains"
# Each process walks the ids from its own random offset, so a just-released id is rarely reused soon.
_counter = itertools.count(random.Random(os.getpid() ^ time.time_ns()).randrange(10_000))


class DomainLease:
    """Exclusive use of one ROS domain id among all processes on this machine, until `release()`.

    An flock on ``$TMPDIR/evo1_ros_test_domains/<id>.lock``: the kernel drops it when the holder
    exits, so a killed test run never leaks a lease. Two pytest sessions at once (a developer's run
    beside CI) therefore cannot talk to each other's nodes.
    """

    def __init__(self) -> None:
        _LEASE_DIR.mkdir(exist_ok=True)
        start = next(_counter)
        for k in range(len(DOMAIN_IDS)):
            domain_id = DOMAIN_IDS[(start + k) % len(DOMAIN_IDS)]
            handle: IO[str] = open(_LEASE_DIR / f"{domain_id}.lock", "w")  # noqa: SIM115 - held open
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.domain_id, self._handle = domain_id, handle
            return
        raise RuntimeError(f"all {len(DOMAIN_IDS)} test ROS domain ids are leased by other test processes")

    def release(self) -> None:
        self._handle.close()  # closing the file drops the lock


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


def call(node: Any, srv_type: Any, name: str, request: Any = None, timeout: float = 30.0) -> Any:
    """Call a service from a node spun by the test executor; returns the response (asserts it came)."""
    client = node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=15.0), f"service {name} not available"
        future = client.call_async(request if request is not None else srv_type.Request())
        if not wait_until(future.done, timeout):
            client.remove_pending_request(future)
        assert future.done(), f"service {name} did not answer within {timeout} s"
        return future.result()
    finally:
        node.destroy_client(client)


def python_script_argv(path: Path | str, *args: str) -> list[str]:
    """argv that runs a Python file with this interpreter (the venv's)."""
    return [sys.executable, str(path), *args]

"""Run a resolved node set as child processes, like `ros2 launch` does for its Node actions.

Each child gets the loopback-discovery environment and the Fast DDS SHM profile, its output
prefixed with `[name]`. Ctrl-C (SIGINT) or SIGTERM is forwarded as SIGINT to every child, which
rclpy nodes treat as a clean shutdown; children that do not exit in time get SIGTERM, then SIGKILL.
When a `required` node exits, everything stops. The exit code is non-zero if any child failed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import yaml

from evo1_ros.launcher.description import ResolvedNode, find_executable
from evo1_ros.paths import ament_prefixes, package_share

# Exit codes a child may return after we asked it to stop with SIGINT/SIGTERM; not failures.
_STOPPED_CODES = {0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM}


def launch_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for launched nodes: loopback discovery and the SHM profile unless already set."""
    env = dict(os.environ if base is None else base)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    profile = package_share() / "config" / "fastdds_shm.xml"
    if profile.is_file():
        env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(dict.fromkeys(ament_prefixes()))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class ProcessSpec:
    """A fully built command line for one node."""

    name: str
    argv: list[str]
    required: bool
    env: dict[str, str] = field(default_factory=dict)


def build_processes(nodes: list[ResolvedNode], workdir: Path) -> list[ProcessSpec]:
    """Command lines for the nodes; inline parameters go to a params file in `workdir`."""
    specs = []
    for node in nodes:
        exe = find_executable(node.package, node.executable)
        inline_file = None
        if node.ros and node.params:
            inline_file = str(workdir / f"{node.name}.params.yaml")
            Path(inline_file).write_text(yaml.safe_dump({"/**": {"ros__parameters": node.params}}))
        argv = [exe, *node.arguments, *node.ros_args(inline_file)]
        specs.append(ProcessSpec(node.name, argv, node.required, node.env))
    return specs


class _Child:
    def __init__(self, spec: ProcessSpec, env: dict[str, str], out: TextIO, lock: threading.Lock) -> None:
        self.spec = spec
        self.stop_requested = False
        self.proc = subprocess.Popen(
            spec.argv,
            env={**env, **spec.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our signals only: a terminal Ctrl-C must not hit children twice
        )
        self._thread = threading.Thread(target=self._pump, args=(out, lock), daemon=True)
        self._thread.start()

    def _pump(self, out: TextIO, lock: threading.Lock) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            with lock:
                out.write(f"[{self.spec.name}] {line}\n")
                out.flush()

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig) if sig == signal.SIGKILL else self.proc.send_signal(sig)

    def join_output(self) -> None:
        self._thread.join(timeout=2)

    def failed(self) -> bool:
        rc = self.proc.returncode
        return rc is not None and (rc not in _STOPPED_CODES if self.stop_requested else rc != 0)


class LaunchRunner:
    """Start, supervise and stop a node set. `run()` blocks until all children have exited."""

    def __init__(
        self,
        processes: list[ProcessSpec],
        env: dict[str, str] | None = None,
        out: TextIO | None = None,
        sigint_timeout: float = 5.0,
        sigterm_timeout: float = 5.0,
    ) -> None:
        self.processes = processes
        self.env = launch_environment(env)
        self.out = out or sys.stdout
        self.sigint_timeout = sigint_timeout
        self.sigterm_timeout = sigterm_timeout
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.children: list[_Child] = []

    def log(self, text: str) -> None:
        with self._lock:
            self.out.write(f"[evo1 launch] {text}\n")
            self.out.flush()

    def request_stop(self, *_: object) -> None:
        """Signal-handler-safe: ask `run()` to stop everything."""
        self._stop.set()

    def run(self) -> int:
        for spec in self.processes:
            self.log(f"starting {spec.name}: {' '.join(spec.argv)}")
            try:
                self.children.append(_Child(spec, self.env, self.out, self._lock))
            except OSError as exc:
                self.log(f"cannot start {spec.name}: {exc}")
                self._stop.set()
                break
        reported: set[int] = set()
        while not self._stop.is_set():
            running = 0
            for child in self.children:
                rc = child.proc.poll()
                if rc is None:
                    running += 1
                    continue
                if id(child) not in reported:
                    reported.add(id(child))
                    self.log(f"{child.spec.name} exited with code {rc}")
                    if child.spec.required:
                        self.log(f"{child.spec.name} is required: stopping everything")
                        self._stop.set()
            if running == 0:
                break
            time.sleep(0.05)
        self._shutdown()
        failed = [c.spec.name for c in self.children if c.failed()]
        if len(self.children) < len(self.processes):
            failed.append("(not all processes could be started)")
        if failed:
            self.log(f"failed: {', '.join(failed)}")
            return 1
        return 0

    def _shutdown(self) -> None:
        alive = [c for c in self.children if c.proc.poll() is None]
        for sig, timeout in ((signal.SIGINT, self.sigint_timeout), (signal.SIGTERM, self.sigterm_timeout)):
            if not alive:
                break
            self.log(f"sending {signal.Signals(sig).name} to {', '.join(c.spec.name for c in alive)}")
            for child in alive:
                child.stop_requested = True
                child.signal(sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(c.proc.poll() is None for c in alive):
                time.sleep(0.05)
            alive = [c for c in alive if c.proc.poll() is None]
        for child in alive:
            self.log(f"killing {child.spec.name}")
            child.signal(signal.SIGKILL)
            child.proc.wait()
        for child in self.children:
            child.proc.wait()
            child.join_output()


def run_launch(nodes: list[ResolvedNode], out: TextIO | None = None) -> int:
    """Build command lines, install SIGINT/SIGTERM handlers, run until done; returns the exit code."""
    with tempfile.TemporaryDirectory(prefix="evo1_launch_") as tmp:
        runner = LaunchRunner(build_processes(nodes, Path(tmp)), out=out)
        old_int = signal.signal(signal.SIGINT, runner.request_stop)
        old_term = signal.signal(signal.SIGTERM, runner.request_stop)
        try:
            return runner.run()
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)

"""Shared fixtures: per-test ROS isolation (domain id, loopback discovery, log dir) and node helpers.

The other shared fixtures and rigs live in the plugin package tests/fixtures/, registered here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from ros_harness import DomainLease, NodeProcess, RosTestContext, ros_environment

REPO = Path(__file__).resolve().parent.parent

# Headless MuJoCo rendering through EGL (Mesa llvmpipe, no display, nothing to install): MUJOCO_GL must
# be set before the first `import mujoco` in the process, hence here at collection time
# (before the plugins and any test module are imported).
os.environ.setdefault("MUJOCO_GL", "egl")

pytest_plugins = ["fixtures.xarm"]

# Property tests: the default run ("ci") draws the same examples every time, so CI cannot fail on a
# case nobody saw before; HYPOTHESIS_PROFILE=explore searches new random examples (make test-explore).
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def ros_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Isolated ROS environment for this test, applied to os.environ and returned for subprocesses."""
    log_dir = tmp_path / "ros_log"
    log_dir.mkdir()
    lease = DomainLease()
    env = ros_environment(lease.domain_id, log_dir)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    lease.release()  # after every fixture using the domain (nodes, processes) has been torn down


@pytest.fixture
def ros(ros_env: dict[str, str]) -> Iterator[RosTestContext]:
    """An rclpy context on this test's private domain, spinning in the background."""
    ctx = RosTestContext(int(ros_env["ROS_DOMAIN_ID"]))
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def spawn(ros_env: dict[str, str], tmp_path: Path) -> Iterator:
    """Start real processes with this test's ROS environment; all are stopped at teardown.

    Usage: ``proc = spawn([exe, "--ros-args", ...], name="driver")``.
    """
    procs: list[NodeProcess] = []

    def _spawn(argv: list[str], name: str = "proc", env: dict[str, str] | None = None) -> NodeProcess:
        proc = NodeProcess(argv, {**ros_env, **(env or {})}, tmp_path / f"{name}-{len(procs)}.log")
        procs.append(proc)
        return proc

    yield _spawn
    for proc in procs:
        proc.stop()

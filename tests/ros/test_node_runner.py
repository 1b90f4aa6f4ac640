"""`run_node`, the main() of every node executable, in real processes."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

from evo1_ros.polling import wait_until
from evo1_ros.ros.node_runner import spin_until_shutdown
from fixtures.ros import python_script_argv

NODE = Path(__file__).with_name("nodes") / "runner_node.py"

pytestmark = pytest.mark.ros


def test_sigint_closes_the_node_and_exits_zero(spawn):
    proc = spawn(python_script_argv(NODE, "ok"), name="ok")
    assert proc.wait_for_output(r"\[runner_test\]: up", timeout=20), proc.output()
    proc.send_signal(signal.SIGINT)
    assert wait_until(lambda: proc.proc.poll() is not None, 20), proc.output()
    assert proc.proc.returncode == 0, proc.output()
    assert "closed" in proc.output()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_close_can_still_publish_after_a_stop_signal(spawn, sig):
    """A node's last words (the policy's hold, the driver's rest report) must go out on Ctrl-C: the
    signal stops the executor, and the context stays up until close() has run."""
    proc = spawn(python_script_argv(NODE, "publish"), name="publish")
    assert proc.wait_for_output(r"\[runner_test\]: up", timeout=20), proc.output()
    proc.send_signal(sig)
    assert wait_until(lambda: proc.proc.poll() is not None, 20), proc.output()
    out = proc.output()
    assert proc.proc.returncode == 0, out
    assert "published on close" in out and "Traceback" not in out, out


def test_startup_error_is_one_line_and_exit_code_2(spawn):
    proc = spawn(python_script_argv(NODE, "bad"), name="bad")
    assert wait_until(lambda: proc.proc.poll() is not None, 20), proc.output()
    assert proc.proc.returncode == 2
    out = proc.output()
    assert "[runner_test] cannot start: parameter rate must be > 0" in out
    assert "Traceback" not in out


def test_sigterm_ends_a_process_whose_ros_teardown_hangs(spawn):
    """rclpy's own handlers would swallow this SIGTERM (its context is already down): only SIGKILL
    would end the process. After close(), run_node gives the signals their default action back."""
    proc = spawn(python_script_argv(NODE, "hang"), name="hang")
    assert proc.wait_for_output(r"\[runner_test\]: up", timeout=20), proc.output()
    proc.send_signal(signal.SIGINT)
    assert proc.wait_for_output("hanging in teardown", timeout=20), proc.output()
    assert "closed" in proc.output()  # the node's own cleanup ran before the teardown
    proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: proc.proc.poll() is not None, 10), proc.output()
    assert proc.proc.returncode == -signal.SIGTERM


class _RacingExecutor(SingleThreadedExecutor):
    """spin_once (hence spin) fails the way rclpy does when a shutdown lands while it builds its wait set."""

    def __init__(self, context, shut_down: bool) -> None:
        super().__init__(context=context)
        self.shut_down = shut_down

    def spin_once(self, timeout_sec=None) -> None:
        if self.shut_down:
            self.context.try_shutdown()
        raise _rclpy.RCLError("failed to initialize wait set: the given context is not valid")


@pytest.mark.parametrize("shut_down", [True, False])
def test_spin_until_shutdown_treats_the_wait_set_race_as_shutdown_only_when_it_is_one(ros_env, shut_down):
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        executor = _RacingExecutor(ctx, shut_down)
        if shut_down:
            spin_until_shutdown(executor)  # returns quietly: it was the shutdown
            assert not ctx.ok()
        else:  # the context is fine: a real error, not swallowed
            with pytest.raises(_rclpy.RCLError):
                spin_until_shutdown(executor)
        executor.shutdown()
    finally:
        ctx.try_shutdown()

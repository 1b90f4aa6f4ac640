"""The servo streamer process (issue 15): its channel, and what only a separate process can show.

The shared guarantees (stop latch, reconnect semantics, brake to rest, gripper on its own
connection, ...) run for both streamers in test_arm_driver_safety.py. Here: the binary channel
refuses malformed bytes, a stalled (SIGSTOPped) process slows the command instead of jumping it, a
dead process is a FAULT that clear_error recovers, controller faults and replacements keep the caps.
The node's `streamer: process` wiring is in tests/nodes/xarm_driver/test_xarm_driver_node.py.
"""

from __future__ import annotations

import os
import signal
import struct
import time
from collections.abc import Iterator

import numpy as np
import pytest

from evo1_ros.control.limits import JointLimits
from evo1_ros.control.trajectory import TrajectoryError, validate
from evo1_ros.driver.arm_driver import ARM_JOINTS, ArmDriver, DriverConfig, DriverState
from evo1_ros.driver.realtime import RealtimeConfig
from evo1_ros.driver.servo_process import ChannelError, decode_trajectory, encode_trajectory
from evo1_ros.driver.xarm_session import SessionConfig
from evo1_ros.polling import wait_until

ARM = list(ARM_JOINTS)
VCAP, ACAP = 1.0, 4.0  # config/xarm6_limits.yaml, joint1..6
PERIOD = 1.0 / 200.0


# -- channel ------------------------------------------------------------------------------------------
def test_trajectory_bytes_round_trip_and_malformed_bytes_are_refused() -> None:
    limits = JointLimits.from_yaml()
    traj = validate(
        ["drive_joint", "joint2", "joint1"],
        [0.5, 1.0],
        [[0.2, 0.1, 0.3], [0.4, -0.1, 0.5]],
        limits,
        [[0.1, 0.0, 0.2], [0.0, 0.0, 0.0]],
        required=(),
    )
    body = encode_trajectory(7, traj, 12.5, 12.0)[1:]
    seq, back, start, now = decode_trajectory(body, limits)
    assert (seq, start, now) == (7, 12.5, 12.0)
    assert back.joint_names == traj.joint_names
    np.testing.assert_array_equal(back.positions, traj.positions)
    np.testing.assert_array_equal(back.velocities, traj.velocities)
    np.testing.assert_array_equal(back.times, traj.times)
    with pytest.raises(ChannelError):
        decode_trajectory(body[:-8], limits)  # truncated
    with pytest.raises(ChannelError):
        decode_trajectory(body + b"\0" * 8, limits)  # trailing bytes
    bad_index = bytearray(body)
    struct.pack_into("<i", bad_index, struct.calcsize("<IddIII"), 99)
    with pytest.raises(ChannelError, match="index"):
        decode_trajectory(bytes(bad_index), limits)
    # bytes that decode but are not a valid trajectory never reach the streamer: the child re-validates
    outside = validate(["joint3"], [1.0], [[0.1]], limits, required=())
    raw = bytearray(encode_trajectory(1, outside, 0.0, 0.0)[1:])
    struct.pack_into("<d", raw, len(raw) - 8, 1.5)  # joint3 upper limit 0.17
    with pytest.raises(TrajectoryError, match="position_limit"):
        decode_trajectory(bytes(raw), limits)
    struct.pack_into("<d", raw, len(raw) - 8, float("nan"))
    with pytest.raises(TrajectoryError, match="not_finite"):
        decode_trajectory(bytes(raw), limits)


# -- the process --------------------------------------------------------------------------------------
@pytest.fixture
def process_driver(controller) -> Iterator[tuple[ArmDriver, list[tuple[str, str]]]]:
    events: list[tuple[str, str]] = []
    cfg = DriverConfig(
        session=SessionConfig(host=controller.host, gripper=False),
        reconnect_period=0.3,
        streamer="process",
        realtime=RealtimeConfig(priority=10, lock_memory=True),
    )
    driver = ArmDriver(
        cfg, JointLimits.from_yaml(), None, on_event=lambda lvl, text: events.append((lvl, text))
    )
    driver.start()
    try:
        assert wait_until(lambda: driver.state == DriverState.READY, 20), (driver.status(), events)
        yield driver, events
    finally:
        driver.shutdown()


def command_log(driver: ArmDriver) -> list[tuple[float, float, np.ndarray]]:
    log: list[tuple[float, float, np.ndarray]] = []
    driver.add_command_listener(lambda now, dt, cmd: log.append((now, dt, cmd.copy())))
    return log


def test_the_stream_runs_in_its_own_process_on_its_own_connection(controller, process_driver) -> None:
    driver, events = process_driver
    pid = driver.streamer_pid
    assert pid is not None and pid != os.getpid() and os.path.exists(f"/proc/{pid}")
    # the real-time settings were tried and the outcome logged, whether granted or refused
    assert any("SCHED_FIFO" in text for _, text in events), events
    assert any("mlockall" in text or "memory locked" in text for _, text in events), events
    assert controller.command_client_count() >= 2  # the driver's connection + the streamer's
    log = command_log(driver)
    driver.submit(ARM, [1.0], [[0.4, 0, 0, 0, 0, 0]], None, None)
    assert wait_until(lambda: abs(controller.q[0] - 0.4) < 2e-3, 10)
    assert wait_until(lambda: not driver.status().moving, 5)
    assert np.allclose(controller.servo_target, driver.commanded_positions()[:6], atol=1e-9)
    st = driver.status()
    assert st.cycles > 100 and st.commands_sent > 50 and len(st.periods) > 100
    assert len(log) > 100 and all(np.isfinite(entry[2]).all() for entry in log)


def test_replacement_keeps_the_caps(controller, process_driver) -> None:
    driver, _ = process_driver
    log = command_log(driver)
    driver.submit(ARM, [1.0], [[0.8, 0, 0, 0, 0, 0]], None, None)
    assert wait_until(lambda: controller.q[0] > 0.3, 5)
    driver.submit(ARM, [1.5], [[-0.6, 0, 0, 0, 0, 0]], None, None)  # reverses joint1 mid-way
    assert wait_until(lambda: abs(controller.q[0] + 0.6) < 2e-3, 10)
    entries = list(log)
    dt = np.array([e[1] for e in entries[1:]])
    q = np.array([e[2][0] for e in entries])
    v = np.diff(q) / dt
    assert len(v) > 200
    assert np.max(np.abs(v)) <= VCAP + 1e-9
    assert np.max(np.abs(np.diff(v)) / dt[1:]) <= ACAP + 1e-6
    assert v.max() > 0.5 and v.min() < -0.5


def test_a_stalled_process_slows_the_command_instead_of_jumping(controller, process_driver) -> None:
    """SIGSTOP the streamer for 0.6 s mid-motion: the next step moves at most max_step_periods (2)
    periods' worth of capped motion, the late cycle is counted, nothing faults."""
    driver, _ = process_driver
    log = command_log(driver)
    driver.submit(ARM, [1.5], [[0.8, 0, 0, 0, 0, 0]], None, None)
    assert wait_until(lambda: driver.commanded_positions()[0] > 0.1, 5)
    pid = driver.streamer_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        assert wait_until(lambda: time.monotonic() - stopped >= 0.6, 2)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert wait_until(lambda: abs(controller.q[0] - 0.8) < 2e-3, 10), driver.status()
    st = driver.status()
    assert st.state == DriverState.READY and controller.error_code == 0 and st.late_cycles >= 1
    entries = list(log)
    now = np.array([e[0] for e in entries])
    q = np.array([e[2][0] for e in entries])
    assert np.max(np.diff(now)) >= 0.55  # the stall happened
    assert np.max(np.abs(np.diff(q))) <= VCAP * 2 * PERIOD + 1e-9


def test_a_dead_process_is_a_fault_and_clear_error_starts_a_new_one(controller, process_driver) -> None:
    driver, _ = process_driver
    old = driver.streamer_pid
    os.kill(old, signal.SIGKILL)
    assert wait_until(lambda: driver.state == DriverState.FAULT, 5), driver.status()
    assert "streamer process exited" in driver.status().fault
    held = controller.q.copy()
    driver.clear_error()
    assert driver.state == DriverState.READY and driver.streamer_pid not in (None, old)
    assert np.allclose(controller.q, held, atol=1e-9)  # recovery did not move the arm
    driver.submit(ARM, [0.6], [[0.2, 0, 0, 0, 0, 0]], None, None)
    assert wait_until(lambda: abs(controller.q[0] - 0.2) < 2e-3, 10)


def test_controller_fault_stops_the_process_stream_until_clear_error(controller, process_driver) -> None:
    driver, _ = process_driver
    driver.submit(ARM, [3.0], [[1.5, 0, 0, 0, 0, 0]], None, None)
    assert wait_until(lambda: controller.q[0] > 0.2, 5)
    rest: list[np.ndarray] = []
    driver.add_rest_listener(rest.append)
    controller.inject_collision()
    assert wait_until(lambda: driver.state == DriverState.FAULT, 5)
    assert "C31" in driver.status().fault
    assert wait_until(lambda: len(rest) == 1, 5)  # where the interrupted command came to rest
    sent = controller.counters()["servoj_received"]
    time.sleep(0.3)
    assert controller.counters()["servoj_received"] == sent  # nothing streamed while faulted
    driver.clear_error()
    assert driver.state == DriverState.READY and controller.error_code == 0
    driver.submit(ARM, [1.0], [[0.1, 0, 0, 0, 0, 0]], None, None)
    assert wait_until(lambda: abs(controller.q[0] - 0.1) < 2e-3, 10)


# -- the node -----------------------------------------------------------------------------------------
def test_ctrl_c_does_not_kill_the_process_before_the_driver_braked(controller, process_driver) -> None:
    """Ctrl-C reaches the whole process group; the driver's shutdown then still brakes the command to
    rest through the streamer process, so the process must survive the SIGINT itself."""
    driver, _ = process_driver
    pid = driver.streamer_pid
    os.kill(pid, signal.SIGINT)
    driver.submit(ARM, [0.6], [[0.2, 0, 0, 0, 0, 0]], None, None)
    assert wait_until(lambda: abs(controller.q[0] - 0.2) < 2e-3, 10), driver.status()
    assert driver.streamer_pid == pid and driver.state == DriverState.READY


def test_the_process_exits_when_the_driver_is_gone() -> None:
    """A driver that dies (even SIGKILLed) closes the channel; the streamer quits instead of lingering."""
    from evo1_ros.driver.servo_process import ProcessStreamer

    streamer = ProcessStreamer(
        JointLimits.from_yaml().subset(ARM), "127.0.0.1", 200.0, 2.0, 0.1, RealtimeConfig(), lambda *_: None
    )
    streamer.start()
    try:
        assert wait_until(lambda: streamer.ready, 20)
        proc = streamer._proc
        streamer._conn.close()  # what the kernel does to every fd of a dead process
        assert wait_until(lambda: proc.poll() is not None, 10)
        assert proc.returncode == 0
    finally:
        streamer._conn = None
        streamer.close()

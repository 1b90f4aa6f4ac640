"""ArmController without sockets: report frames as the SDK parses them, and request fuzzing."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from xarm.x3.report import ReportDataStructure

from evo1_ros.sim.arm_controller import ArmController
from evo1_ros.sim.loopback_config import LoopbackConfig
from evo1_ros.sim.tracking_plant import TrackingPlant
from evo1_ros.sim.xarm_protocol import Mode, Reg, State, Status, fp32_le
from evo1_ros.sim.xarm_report import build_normal_frame, build_real_frame, build_rich_frame


def make_core() -> ArmController:
    cfg = LoopbackConfig()
    return ArmController(cfg, TrackingPlant(inertia=cfg.joint_inertia))


def ready_core(mode: int) -> ArmController:
    core = make_core()
    for reg, params in (
        (Reg.MOTION_EN, b"\x08\x01"),
        (Reg.SET_MODE, bytes([mode, 0])),
        (Reg.SET_STATE, b"\x00"),
    ):
        status, _ = core.handle(reg, params)
        assert not status & Status.INVALID
    assert core.state == State.SLEEPING and core.mode == mode
    return core


def test_report_frames_parse_with_the_sdk_structures() -> None:
    core = ready_core(Mode.SERVO)
    q = [0.1, -0.2, -0.3, 0.25, 0.3, -0.3]  # largest jump 0.3 rad: below the C24 threshold
    core.handle(Reg.MOVE_SERVOJ, fp32_le([*q, 0.0, 0.35, 8.7, 0.0]))
    for _ in range(200):
        core.tick(0.004)
    snap = core.snapshot()
    rich = ReportDataStructure.create(30002, is_radian=True)
    frame = build_rich_frame(snap)
    rich.update(frame)
    assert rich.data_size == len(frame) == 587
    assert rich.state == State.SLEEPING and rich.mode == Mode.SERVO
    assert np.allclose(rich.actual_joint_angle[:6], q, atol=1e-6)
    assert rich.motor_enable_status == 0x3F and rich.motor_brake_status == 0x3F
    assert rich.error_code == 0 and rich.collision_sens == 3 and rich.teaching_sens == 3
    assert rich.robot_type == 6 and rich.robot_axis == 6 and rich.is_simulation_robot == 0
    assert rich.version in ("v1.12.10", b"v1.12.10")
    assert rich.counter == snap.counter
    assert np.allclose(rich.gravity_direction, [0, 0, -1])
    limits = np.array(rich.reduced_joint_limits)  # [[min, max] per joint]
    assert np.allclose(limits[:6, 0], core.lower, atol=1e-5) and np.allclose(
        limits[:6, 1], core.upper, atol=1e-5
    )
    assert np.allclose(rich.actual_tcp_pose[:3], core.pose()[:3], atol=1e-3)
    normal = ReportDataStructure.create(30001, is_radian=True)
    normal.update(build_normal_frame(snap))
    assert normal.data_size == 145 and np.allclose(normal.actual_joint_angle[:6], q, atol=1e-6)
    real = ReportDataStructure.create(30003, is_radian=True)
    frame = build_real_frame(snap)
    real.update(frame)
    assert struct.unpack(">I", frame[:4])[0] == len(frame) == 87
    assert real.state == State.SLEEPING and real.mode == Mode.SERVO
    assert np.allclose(real.actual_joint_angle[:6], q, atol=1e-6)


def test_error_reports_and_status_bits() -> None:
    core = ready_core(Mode.SERVO)
    status, _ = core.handle(Reg.GET_STATE, b"")
    assert status == 0
    core.raise_error(31)
    status, data = core.handle(Reg.GET_ERROR, b"")
    assert data == bytes([31, 0]) and status & Status.ERROR and status & Status.NOT_READY
    assert core.snapshot().error == 31 and core.state == State.STOPPED and core.mode == Mode.POSITION
    core.handle(Reg.CLEAN_ERR, b"")
    assert core.error == 0 and core.state == State.STOPPED


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(
                    [1, 2, 11, 12, 13, 14, 15, 16, 17, 19, 23, 25, 29, 37, 42, 81, 124, 127, 128]
                ),
                st.integers(0, 255),
            ),
            st.binary(max_size=48),
            st.booleans(),
        ),
        max_size=25,
    )
)
def test_any_request_sequence_keeps_the_controller_consistent(
    requests: list[tuple[int, bytes, bool]],
) -> None:
    core = ready_core(Mode.SERVO)
    for register, params, tick in requests:
        status, data = core.handle(register, params)
        assert 0 <= status <= 0xFF and isinstance(data, bytes) and len(data) <= 1024
        if tick:
            core.tick(0.01)
        assert core.state in (1, 2, 3, 4, 5, 6)
        assert core.mode in Mode.SUPPORTED
        if core.error:
            assert core.state in (State.STOPPED, State.DECELERATING)
        assert np.all(np.isfinite(core.plant.q))
        assert bool(status & Status.ERROR) == bool(core.error)
    core.snapshot()

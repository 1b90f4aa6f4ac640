"""URDF parsing and kinematics: FK reference pose, Jacobian vs finite differences, IK round trips,
twist steps for teleop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evo1_ros.control.kinematics import (
    SerialChain,
    axis_angle_matrix,
    pose_error,
    rotation_log,
)
from evo1_ros.control.limits import ARM_JOINTS, JointLimits
from evo1_ros.control.urdf import default_urdf_path, parse_urdf, rpy_matrix


@pytest.fixture(scope="module")
def flange() -> SerialChain:
    return SerialChain.from_urdf()


@pytest.fixture(scope="module")
def tcp() -> SerialChain:
    return SerialChain.from_urdf(tip="link_tcp")


def _random_q(rng: np.random.Generator, chain: SerialChain) -> np.ndarray:
    return rng.uniform(np.maximum(chain.lower, -math.pi), np.minimum(chain.upper, math.pi))


def test_urdf_names_and_structure() -> None:
    model = parse_urdf(default_urdf_path())
    assert model.name == "xarm6_with_gripper"
    assert model.root == "link_base"
    for link in [
        "link_base",
        *[f"link{i}" for i in range(1, 7)],
        "link_eef",
        "xarm_gripper_base_link",
        "link_tcp",
    ]:
        assert link in model.links
    names = [j.name for j in model.chain("link_base", "link_eef") if j.movable]
    assert names == list(ARM_JOINTS)
    drive = model.joints["drive_joint"]
    assert drive.type == "revolute" and np.allclose(drive.axis, [1, 0, 0])
    assert np.allclose(drive.origin[:3, 3], [0, 0.035, 0.059098])
    mimics = {j.name: j.mimic for j in model.joints.values() if j.mimic}
    assert set(mimics) == {
        "left_finger_joint",
        "left_inner_knuckle_joint",
        "right_outer_knuckle_joint",
        "right_finger_joint",
        "right_inner_knuckle_joint",
    }
    assert set(mimics.values()) == {"drive_joint"}
    assert np.allclose(model.joints["joint_tcp"].origin[:3, 3], [0, 0, 0.172])


def test_urdf_limits_equal_config() -> None:
    model = parse_urdf(default_urdf_path())
    lim = JointLimits.from_yaml()
    for i, name in enumerate(lim.names):
        j = model.joints[name]
        assert (j.lower, j.upper) == (lim.lower[i], lim.upper[i]), name
        assert j.velocity == lim.velocity_limit[i], name


def test_urdf_inertias_are_physical() -> None:
    """Every link with mass has a positive-definite inertia obeying the triangle inequality."""
    import xml.etree.ElementTree as ET

    root = ET.parse(default_urdf_path()).getroot()
    masses = {}
    for link in root.findall("link"):
        inertial = link.find("inertial")
        if inertial is None:
            continue
        m = float(inertial.find("mass").get("value"))
        a = {k: float(v) for k, v in inertial.find("inertia").attrib.items()}
        inertia = np.array(
            [[a["ixx"], a["ixy"], a["ixz"]], [a["ixy"], a["iyy"], a["iyz"]], [a["ixz"], a["iyz"], a["izz"]]]
        )
        ev = np.sort(np.linalg.eigvalsh(inertia))
        assert m > 0 and ev[0] > 0 and ev[0] + ev[1] >= ev[2] * (1 - 1e-9), link.get("name")
        masses[link.get("name")] = m
    # official xArm6 link masses (docs/xarm_protocol.md §9)
    for i, m in enumerate([2.177, 2.011, 1.725, 1.211, 1.206, 0.17], start=1):
        assert masses[f"link{i}"] == pytest.approx(m)


def test_fk_at_zero_matches_reference(flange: SerialChain, tcp: SerialChain) -> None:
    T = flange.fk(np.zeros(6))
    assert np.allclose(T[:3, 3], [0.207, 0.0, 0.112], atol=1e-9)
    assert np.allclose(T[:3, :3], rpy_matrix(math.pi, 0, 0), atol=1e-9)  # roll = pi: tool z down
    assert np.allclose(tcp.fk(np.zeros(6))[:3, 3], [0.207, 0.0, 0.112 - 0.172], atol=1e-9)
    assert flange.joint_names == ARM_JOINTS and flange.dof == 6


def test_fk_joint1_rotates_about_base_z(flange: SerialChain) -> None:
    T = flange.fk(np.array([math.pi / 2, 0, 0, 0, 0, 0]))
    assert np.allclose(T[:3, 3], [0.0, 0.207, 0.112], atol=1e-9)


def test_jacobian_matches_finite_differences(flange: SerialChain, tcp: SerialChain) -> None:
    rng = np.random.default_rng(7)
    eps = 1e-6
    for chain in (flange, tcp):
        for _ in range(20):
            q = _random_q(rng, chain)
            J = chain.jacobian(q)
            Jn = np.zeros_like(J)
            for i in range(6):
                d = np.zeros(6)
                d[i] = eps
                Jn[:, i] = pose_error(chain.fk(q - d), chain.fk(q + d)) / (2 * eps)
            assert np.allclose(J, Jn, atol=1e-7)


def test_ik_round_trips_random_reachable_poses(flange: SerialChain, tcp: SerialChain) -> None:
    rng = np.random.default_rng(11)
    for chain in (flange, tcp):
        for _ in range(60):
            q = _random_q(rng, chain)
            target = chain.fk(q)
            start = np.clip(q + rng.uniform(-0.2, 0.2, 6), chain.lower, chain.upper)
            res = chain.ik(target, start)
            assert res.success, (q, res)
            assert np.all(res.q >= chain.lower) and np.all(res.q <= chain.upper)
            err = pose_error(chain.fk(res.q), target)
            assert np.linalg.norm(err[:3]) <= 1e-5 and np.linalg.norm(err[3:]) <= 1e-4


def test_ik_respects_limits_and_reports_unreachable(flange: SerialChain) -> None:
    far = np.eye(4)
    far[:3, 3] = [2.0, 0.0, 0.5]  # reach is ~0.7 m
    res = flange.ik(far, np.zeros(6), max_iterations=50)
    assert not res.success and res.position_error > 1.0
    assert np.all(res.q >= flange.lower) and np.all(res.q <= flange.upper)
    with pytest.raises(ValueError):
        flange.ik(np.full((4, 4), np.nan), np.zeros(6))


def test_twist_step_moves_tcp_along_commanded_velocity(tcp: SerialChain) -> None:
    q = np.array([0.0, -0.3, -0.8, 0.0, 1.1, 0.0])
    twist = np.array([0.05, -0.02, 0.03, 0.0, 0.0, 0.1])
    dt = 0.01
    q1 = tcp.twist_step(q, twist, dt)
    achieved = pose_error(tcp.fk(q), tcp.fk(q1)) / dt
    assert np.allclose(achieved, twist, atol=2e-3)


def test_twist_step_respects_speed_caps_and_limits(tcp: SerialChain) -> None:
    q = np.array([0.0, -0.3, -0.8, 0.0, 1.1, 0.0])
    caps = np.full(6, 0.5)
    dq = tcp.twist_to_joint_velocities(q, np.array([2.0, 0, 0, 0, 0, 0]), 0.01, max_velocity=caps)
    assert np.max(np.abs(dq)) == pytest.approx(0.5)
    # direction is kept when scaling: the TCP still moves along +x
    v = tcp.jacobian(q) @ dq
    assert v[0] > 0 and abs(v[1]) < 0.05 * v[0] and abs(v[2]) < 0.05 * v[0]
    # at the joint3 upper limit, a twist needing joint3 to go further up locks it instead
    q_lim = q.copy()
    q_lim[2] = tcp.upper[2]
    for _ in range(3):
        q_next = tcp.twist_step(q_lim, np.array([0.0, 0.0, 0.0, 0.0, 0.3, 0.0]), 0.01)
        assert np.all(q_next <= tcp.upper) and np.all(q_next >= tcp.lower)
    with pytest.raises(ValueError):
        tcp.twist_step(q, np.array([0.0, 0, 0, 0, 0, np.inf]), 0.01)


def test_rotation_log_inverts_axis_angle() -> None:
    rng = np.random.default_rng(3)
    for angle in [0.0, 1e-10, 0.3, 2.0, math.pi - 1e-8, math.pi]:
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        w = rotation_log(axis_angle_matrix(axis, angle))
        assert np.linalg.norm(w) == pytest.approx(angle, abs=1e-7)
        assert np.allclose(
            axis_angle_matrix(axis, angle),
            axis_angle_matrix(w / max(angle, 1e-300), angle) if angle > 0 else np.eye(3),
            atol=1e-7,
        )


def test_parse_urdf_rejects_bad_input(tmp_path) -> None:
    with pytest.raises(ValueError):
        parse_urdf("<notarobot/>")
    bad = (
        '<robot name="r"><link name="a"/><joint name="j" type="revolute"><parent link="a"/>'
        '<child link="b"/></joint></robot>'
    )
    with pytest.raises(ValueError):
        parse_urdf(bad)
    model = parse_urdf(
        '<robot name="r"><link name="a"/><link name="b"/><joint name="j" type="continuous">'
        '<parent link="a"/><child link="b"/><axis xyz="0 0 2"/></joint></robot>'
    )
    assert model.joints["j"].lower == -math.inf and np.allclose(model.joints["j"].axis, [0, 0, 1])
    with pytest.raises(ValueError):
        model.chain("b", "a")

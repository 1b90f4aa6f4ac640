"""Serial-chain kinematics from the URDF: forward kinematics, geometric Jacobian, DLS IK, twist steps.

Teleop turns a SpaceMouse/joystick twist into joint targets, the policy's safety filter and the
sim need end-effector poses, and all of that must run without ROS or MoveIt, so it is computed here
directly from ``urdf/xarm6_with_gripper.urdf``. Frames: every pose and twist is in the chain's base
link frame (``link_base``); twists are ``[vx, vy, vz, wx, wy, wz]`` of the tip link's origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evo1_ros.control.urdf import UrdfJoint, default_urdf_path, parse_urdf

FLANGE_LINK = "link_eef"  # flange (= link6 origin)
TCP_LINK = "link_tcp"  # gripper tool centre point, 0.172 m along the flange z axis
BASE_LINK = "link_base"


def axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation of ``angle`` rad about the unit vector ``axis`` (Rodrigues)."""
    x, y, z = axis
    c, s = math.cos(angle), math.sin(angle)
    C = 1.0 - c
    return np.array(
        [
            [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
            [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
            [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
        ]
    )


def rotation_log(R: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, angle in [0, pi]) of a rotation matrix; stable near 0 and pi."""
    cos_a = max(-1.0, min(1.0, (np.trace(R) - 1.0) / 2.0))
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    sin_a = 0.5 * np.linalg.norm(w)
    angle = math.atan2(sin_a, cos_a)
    if angle < 1e-9:
        return 0.5 * w
    if math.pi - angle > 1e-6:
        return w * (angle / (2.0 * sin_a))
    # near pi: axis from the symmetric part, R + I = 2 a a^T (1 - cos) ~ 2 a a^T
    B = (R + np.eye(3)) / 2.0
    k = int(np.argmax(np.diag(B)))
    axis = B[:, k] / math.sqrt(max(B[k, k], 1e-300))
    axis /= np.linalg.norm(axis)
    if np.dot(axis, w) < 0:
        axis = -axis
    return axis * angle


def pose_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """6-vector [target position - current position, rotation vector of target * current^T] (base frame)."""
    dp = target[:3, 3] - current[:3, 3]
    dr = rotation_log(target[:3, :3] @ current[:3, :3].T)
    return np.concatenate([dp, dr])


@dataclass(frozen=True)
class IKResult:
    """Outcome of :meth:`SerialChain.ik`: joints, whether both tolerances were met, final errors."""

    q: np.ndarray
    success: bool
    iterations: int
    position_error: float  # m
    orientation_error: float  # rad


class SerialChain:
    """The movable joints between a base and a tip link, with their limits from the URDF."""

    def __init__(self, joints: list[UrdfJoint]) -> None:
        """Build from URDF joints ordered base -> tip (see :meth:`from_urdf`); fixed joints fold in."""
        if any(j.type not in ("revolute", "continuous", "prismatic", "fixed") for j in joints):
            raise ValueError("only revolute, continuous, prismatic and fixed joints are supported")
        # Each movable joint i: T_i = pre_i (fixed transforms since the previous movable joint);
        # the final fixed transform after the last movable joint is `self._post`.
        self._pre: list[np.ndarray] = []
        self._axes: list[np.ndarray] = []
        self._prismatic: list[bool] = []
        movable: list[UrdfJoint] = []
        acc = np.eye(4)
        for j in joints:
            acc = acc @ j.origin
            if j.movable:
                if j.mimic is not None:
                    raise ValueError(f"mimic joint {j.name!r} inside a serial chain is not supported")
                self._pre.append(acc)
                self._axes.append(np.asarray(j.axis, dtype=float))
                self._prismatic.append(j.type == "prismatic")
                movable.append(j)
                acc = np.eye(4)
        self._post = acc
        if not movable:
            raise ValueError("the chain has no movable joint")
        self.joint_names: tuple[str, ...] = tuple(j.name for j in movable)
        self.lower = np.array([j.lower for j in movable], dtype=float)
        self.upper = np.array([j.upper for j in movable], dtype=float)
        self.velocity_limit = np.array([j.velocity for j in movable], dtype=float)
        self.base_link = joints[0].parent
        self.tip_link = joints[-1].child

    @classmethod
    def from_urdf(
        cls, path: str | Path | None = None, base: str = BASE_LINK, tip: str = FLANGE_LINK
    ) -> SerialChain:
        """Chain from ``base`` to ``tip`` of a URDF (default: the project's xArm6 + gripper, flange)."""
        model = parse_urdf(path or default_urdf_path())
        return cls(model.chain(base, tip))

    @property
    def dof(self) -> int:
        """Number of movable joints."""
        return len(self.joint_names)

    def _joint_motion(self, i: int, qi: float) -> np.ndarray:
        M = np.eye(4)
        if self._prismatic[i]:
            M[:3, 3] = self._axes[i] * qi
        else:
            M[:3, :3] = axis_angle_matrix(self._axes[i], qi)
        return M

    def _check_q(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=float).reshape(-1)
        if q.shape != (self.dof,):
            raise ValueError(f"expected {self.dof} joint values, got shape {q.shape}")
        if not np.all(np.isfinite(q)):
            raise ValueError("joint values must be finite")
        return q

    def joint_frames(self, q: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """World (base) frames of every movable joint at ``q`` (before its own motion) and the tip pose."""
        q = self._check_q(q)
        T = np.eye(4)
        frames = []
        for i in range(self.dof):
            T = T @ self._pre[i]
            frames.append(T)
            T = T @ self._joint_motion(i, q[i])
        return frames, T @ self._post

    def fk(self, q: np.ndarray) -> np.ndarray:
        """4x4 pose of the tip link in the base frame at joint positions ``q``."""
        return self.joint_frames(q)[1]

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """Geometric Jacobian (6 x dof): rows [linear velocity of the tip origin; angular velocity]."""
        frames, tip = self.joint_frames(q)
        p_tip = tip[:3, 3]
        J = np.zeros((6, self.dof))
        for i, F in enumerate(frames):
            z = F[:3, :3] @ self._axes[i]
            if self._prismatic[i]:
                J[:3, i] = z
            else:
                J[:3, i] = np.cross(z, p_tip - F[:3, 3])
                J[3:, i] = z
        return J

    def ik(
        self,
        target: np.ndarray,
        q0: np.ndarray,
        *,
        max_iterations: int = 200,
        damping: float = 1e-3,
        position_tolerance: float = 1e-5,
        orientation_tolerance: float = 1e-4,
        max_step: float = 0.3,
        orientation_weight: float = 1.0,
    ) -> IKResult:
        """Damped-least-squares IK for a 4x4 ``target`` pose, starting from ``q0``, within joint limits.

        Levenberg-Marquardt style: the damping is sqrt(lam^2 + |e|^2) (error-scaled, so far from the
        goal steps are cautious and close to it convergence is fast even near singularities); a step
        that does not lower the (weighted) pose error is rejected and lam raised, accepted steps
        lower it again (never below ``damping``). Joints at a limit that the step would push further
        out are locked for that step, so the others take over. ``max_step`` caps the largest joint
        change per iteration (rad or m). The result is always inside the URDF joint limits; check
        ``success`` (the IK may end in a local minimum when started far from a solution).
        """
        target = np.asarray(target, dtype=float)
        if target.shape != (4, 4) or not np.all(np.isfinite(target)):
            raise ValueError("target must be a finite 4x4 pose")
        w = np.array([1.0, 1.0, 1.0, orientation_weight, orientation_weight, orientation_weight])
        q = np.clip(self._check_q(q0), self.lower, self.upper)
        err = pose_error(self.fk(q), target)
        cost = float(np.linalg.norm(w * err))
        lam = damping
        it = 0
        for it in range(1, max_iterations + 1):
            if (
                np.linalg.norm(err[:3]) <= position_tolerance
                and np.linalg.norm(err[3:]) <= orientation_tolerance
            ):
                return IKResult(
                    q, True, it - 1, float(np.linalg.norm(err[:3])), float(np.linalg.norm(err[3:]))
                )
            J = w[:, None] * self.jacobian(q)
            dq = self._dls(J, w * err, math.sqrt(lam * lam + cost * cost), q, None)
            big = np.max(np.abs(dq))
            if big > max_step:
                dq *= max_step / big
            q_new = np.clip(q + dq, self.lower, self.upper)
            err_new = pose_error(self.fk(q_new), target)
            cost_new = float(np.linalg.norm(w * err_new))
            if cost_new < cost:
                q, err, cost = q_new, err_new, cost_new
                lam = max(lam * 0.5, damping)
            else:
                lam = min(lam * 4.0, 1e3)
        ok = (
            np.linalg.norm(err[:3]) <= position_tolerance and np.linalg.norm(err[3:]) <= orientation_tolerance
        )
        return IKResult(q, bool(ok), it, float(np.linalg.norm(err[:3])), float(np.linalg.norm(err[3:])))

    def _dls(self, J: np.ndarray, e: np.ndarray, lam: float, q: np.ndarray, dt: float | None) -> np.ndarray:
        """DLS solve J dq = e, re-solved with joints locked that would leave their limits."""
        locked = np.zeros(self.dof, dtype=bool)
        dq = np.zeros(self.dof)
        for _ in range(self.dof + 1):
            free = ~locked
            n_free = int(free.sum())
            # min ||J_free x - e||^2 + lam^2 ||x||^2 as one least-squares problem (SVD based, so it
            # stays well defined with lam = 0 and a rank-deficient J)
            A = np.vstack([J[:, free], lam * np.eye(n_free)])
            b = np.concatenate([e, np.zeros(n_free)])
            dq = np.zeros(self.dof)
            dq[free] = np.linalg.lstsq(A, b, rcond=None)[0]
            step = dq if dt is None else dq * dt
            out = ((q + step > self.upper) & (dq > 0)) | ((q + step < self.lower) & (dq < 0))
            if not np.any(out):
                return dq
            locked |= out
            if locked.all():
                break
        return np.zeros(self.dof)

    def twist_to_joint_velocities(
        self,
        q: np.ndarray,
        twist: np.ndarray,
        dt: float,
        *,
        max_velocity: np.ndarray | None = None,
        damping: float = 0.05,
        singular_threshold: float = 0.05,
    ) -> np.ndarray:
        """Joint velocities (rad/s) realising ``twist`` (base frame, tip origin) as well as DLS can.

        Joints that would cross a limit within ``dt`` are locked and the rest re-solved. The result
        is scaled down as a whole (direction kept) so no joint exceeds ``max_velocity`` (default:
        the URDF velocity limits). Near a singularity (smallest singular value of the Jacobian below
        ``singular_threshold``) the solve is damped, up to ``damping`` at the singularity itself, so
        joint speeds stay bounded; elsewhere it is exact.
        """
        q = self._check_q(q)
        tw = np.asarray(twist, dtype=float).reshape(-1)
        if tw.shape != (6,) or not np.all(np.isfinite(tw)):
            raise ValueError("twist must be 6 finite values [vx, vy, vz, wx, wy, wz]")
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be finite and > 0, got {dt}")
        vmax = self.velocity_limit if max_velocity is None else np.asarray(max_velocity, dtype=float)
        if vmax.shape != (self.dof,) or np.any(vmax <= 0):
            raise ValueError(f"max_velocity must be {self.dof} positive values")
        J = self.jacobian(q)
        # Damp only near a singularity (smallest singular value below `singular_threshold`), so
        # away from one the twist is realised exactly, and near one joint speeds stay bounded.
        sigma_min = float(np.linalg.svd(J, compute_uv=False)[-1])
        ratio = sigma_min / singular_threshold
        lam = damping * math.sqrt(1.0 - ratio * ratio) if ratio < 1.0 else 0.0
        dq = self._dls(J, tw, lam, q, dt)
        ratio = np.max(np.abs(dq) / vmax)
        if ratio > 1.0:
            dq = dq / ratio
        return dq

    def twist_step(
        self,
        q: np.ndarray,
        twist: np.ndarray,
        dt: float,
        *,
        max_velocity: np.ndarray | None = None,
        damping: float = 0.05,
        singular_threshold: float = 0.05,
    ) -> np.ndarray:
        """Next joint positions after moving with ``twist`` for ``dt`` s (teleop), inside the limits."""
        dq = self.twist_to_joint_velocities(
            q, twist, dt, max_velocity=max_velocity, damping=damping, singular_threshold=singular_threshold
        )
        return np.clip(np.asarray(q, dtype=float) + dq * dt, self.lower, self.upper)

"""Episodes in the simulation through the real ROS graph: processes, the expert client, outcomes.

Used by `evo1 sim record-expert` and `evo1 eval sim`. `SimStack` starts the sim node + xArm driver
(`evo1 launch sim`) and optionally the recorder as child processes; `EpisodeClient` is an rclpy node
that homes the arm, resets the scene with a seed (`/sim/reset`), runs the scripted expert by
publishing its motions on `/xarm/joint_trajectory` (the command path a teleoperator uses), watches
`/xarm/joint_states` and `/sim/task_state`, and drives the recorder's episode services.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from evo1_msgs.msg import PolicyStatus, RecorderStatus
from evo1_msgs.srv import SetTask, StartEpisode
from evo1_ros.control.limits import ARM_JOINTS, GRIPPER_JOINT
from evo1_ros.polling import wait_until
from evo1_ros.ros.qos import COMMAND
from evo1_ros.ros.stamps import seconds_to_duration
from evo1_ros.sim.expert import (
    GRIPPER_OPEN,
    ExpertError,
    ExpertSettings,
    Motion,
    ScriptedExpert,
    trapezoid_times,
)
from evo1_ros.sim.loopback_host import free_loopback_host
from evo1_ros.sim.sim_world import READY_JOINTS

JOINTS = [*ARM_JOINTS, GRIPPER_JOINT]


class EpisodeError(RuntimeError):
    """The graph did not do what an episode needs (no joint states, refused service, ...)."""


@dataclass
class EpisodeOutcome:
    """What happened in one episode."""

    task: str
    seed: int
    success: bool
    success_time: float | None  # simulated s from reset to the first success
    duration: float  # wall s from reset to the end of the episode
    motions: list[str] = field(default_factory=list)
    error: str = ""
    saved: bool = False
    episode_index: int | None = None


class ManagedProcess:
    """A child process in its own session, output to a log file; stopped with SIGINT, then harder."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        """Last lines of its output (for error messages)."""
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT (clean ROS shutdown), then SIGTERM, then SIGKILL of the whole group."""
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                if sig == signal.SIGKILL:
                    os.killpg(self.proc.pid, sig)
                else:
                    self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=wait)
        rc = self.proc.wait()
        self._log.close()
        return rc


@dataclass
class StackSettings:
    """What `SimStack` starts."""

    task: str = "pick_place_can"
    seed: int = 0
    image_size: int = 224
    camera_rate: float = 15.0
    robot_ip: str = ""  # "" = a free 127.x address
    dataset_dir: str = ""  # "" = no recorder
    fps: int = 15
    video_codec: str = "libx264"
    episode_time_limit: float = 90.0
    log_dir: str = ""  # "" = a temporary folder
    policy_checkpoint: str = ""  # "" = no evo1_policy node
    policy_task: str = ""  # instruction the policy starts with
    policy_device: str = "auto"


class SimStack:
    """`evo1 launch sim` (sim node + driver) and optionally the recorder, as child processes."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.log_dir = Path(settings.log_dir or tempfile.mkdtemp(prefix="evo1_sim_"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.host = settings.robot_ip or free_loopback_host()
        self.processes: dict[str, ManagedProcess] = {}

    def start(self) -> SimStack:
        """Start the processes (returns at once; `EpisodeClient.wait_ready` waits for them)."""
        s = self.settings
        size = str(int(s.image_size))
        self.processes["sim"] = ManagedProcess(
            [
                sys.executable, "-m", "evo1_ros.cli.main", "launch", "sim", f"robot_ip:={self.host}",
                f"task:={s.task}", f"seed:={s.seed}", f"image_width:={size}", f"image_height:={size}",
                f"camera_rate:={float(s.camera_rate)}",
            ],
            self.log_dir / "sim_launch.log",
        )  # fmt: skip
        if s.dataset_dir:
            params = {
                "dataset_dir": str(Path(s.dataset_dir).expanduser().resolve()),
                "default_task": s.task,
                "fps": int(s.fps),
                "image_width": int(s.image_size),
                "image_height": int(s.image_size),
                "reset_time": 0.0,
                "episode_time_limit": float(s.episode_time_limit),
                "video_codec": s.video_codec,
                # rendering shares the CPU with physics and the driver: allow ~3 frame periods of lag
                "camera_max_age": max(0.2, 3.0 / float(s.camera_rate)),
            }
            argv = [sys.executable, "-m", "evo1_ros.nodes.recorder", "--ros-args", "-r", "__node:=recorder"]
            from evo1_ros.paths import share_file

            argv += ["--params-file", str(share_file("config", "recorder.yaml"))]
            for key, value in params.items():
                argv += ["-p", f"{key}:={json.dumps(value) if isinstance(value, str) else value}"]
            self.processes["recorder"] = ManagedProcess(argv, self.log_dir / "recorder.log")
        if s.policy_checkpoint:
            from evo1_ros.paths import share_file

            params = {
                "checkpoint": str(Path(s.policy_checkpoint).expanduser().resolve()),
                "task": s.policy_task,
                "device": s.policy_device,
                "autostart": False,
            }
            argv = [
                sys.executable,
                "-m",
                "evo1_ros.nodes.evo1_policy",
                "--ros-args",
                "-r",
                "__node:=evo1_policy",
            ]
            argv += ["--params-file", str(share_file("config", "evo1_policy.yaml"))]
            for key, value in params.items():
                text = json.dumps(value) if isinstance(value, str) else str(value).lower()
                argv += ["-p", f"{key}:={text}"]
            self.processes["policy"] = ManagedProcess(argv, self.log_dir / "evo1_policy.log")
        return self

    def check_alive(self) -> None:
        """Raise EpisodeError with the log tail of any child that exited."""
        for name, proc in self.processes.items():
            if not proc.alive():
                raise EpisodeError(
                    f"{name} exited (code {proc.proc.returncode}); last output:\n{proc.tail()}"
                )

    def stop(self) -> None:
        """Stop the recorder first (it finishes its files), then the simulation."""
        for name in ("policy", "recorder", "sim"):
            if name in self.processes:
                self.processes[name].stop()


class EpisodeClient(Node):
    """ROS client that runs seeded episodes of the scripted expert against the sim graph."""

    def __init__(self, sim_ns: str = "/sim", recorder_ns: str = "/recorder", policy_ns: str = "") -> None:
        super().__init__("evo1_sim_episodes")
        self._lock = threading.Lock()
        self._joints: JointState | None = None
        self._status: dict[str, Any] | None = None
        self._status_count = 0
        self._recorder: RecorderStatus | None = None
        self.create_subscription(JointState, "/xarm/joint_states", self._on_joints, 10)
        self.create_subscription(RecorderStatus, f"{recorder_ns}/status", self._on_recorder, 10)
        self.create_subscription(String, f"{sim_ns}/task_state", self._on_status, 10)
        self._traj = self.create_publisher(JointTrajectory, "/xarm/joint_trajectory", COMMAND)
        self._reset = self.create_client(SetTask, f"{sim_ns}/reset")
        self._start = self.create_client(StartEpisode, f"{recorder_ns}/start_episode")
        self._save = self.create_client(Trigger, f"{recorder_ns}/save_episode")
        self._discard = self.create_client(Trigger, f"{recorder_ns}/discard_episode")
        self._policy_status: list[PolicyStatus] = []
        self._policy = bool(policy_ns)
        if policy_ns:
            self.create_subscription(PolicyStatus, f"{policy_ns}/status", self._on_policy, 10)
            self._policy_start = self.create_client(Trigger, f"{policy_ns}/start")
            self._policy_stop = self.create_client(Trigger, f"{policy_ns}/stop")
            self._policy_task = self.create_client(SetTask, f"{policy_ns}/set_task")
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self)
        self._spin = threading.Thread(target=self._executor.spin, name="episode-client", daemon=True)
        self._spin.start()

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self._executor.shutdown(timeout_sec=2.0)
        self.destroy_node()

    # --- inputs -----------------------------------------------------------------------------------
    def _on_joints(self, msg: JointState) -> None:
        with self._lock:
            self._joints = msg

    def _on_status(self, msg: String) -> None:
        with self._lock:
            self._status = json.loads(msg.data)
            self._status_count += 1

    def _on_policy(self, msg: PolicyStatus) -> None:
        with self._lock:
            self._policy_status.append(msg)

    def _on_recorder(self, msg: RecorderStatus) -> None:
        with self._lock:
            self._recorder = msg

    def wait_recorder_streams(self, timeout: float, alive: Callable[[], None] = lambda: None) -> None:
        """Wait until the recorder has received every stream (cameras, joints, the executed command),
        so the first frames of an episode are not dropped. The command stream only carries what the
        driver accepted while the recorder listened, so a (harmless) home motion is sent meanwhile."""
        deadline = time.monotonic() + timeout
        next_poke = time.monotonic()
        while time.monotonic() < deadline:
            alive()
            with self._lock:
                rec = self._recorder
            if rec is not None and rec.stream_ages and all(a >= 0.0 for a in rec.stream_ages):
                return
            if rec is not None and time.monotonic() >= next_poke:
                self.home()
                next_poke = time.monotonic() + 2.0
            time.sleep(0.1)
        missing = (
            "no recorder status"
            if rec is None
            else dict(zip(rec.stream_names, rec.stream_ages, strict=False))
        )
        raise EpisodeError(f"the recorder does not receive all its streams within {timeout:.0f} s: {missing}")

    def joints(self) -> np.ndarray:
        """Latest [joint1..joint6, drive_joint] (rad)."""
        with self._lock:
            msg = self._joints
        if msg is None:
            raise EpisodeError("no /xarm/joint_states yet")
        index = {n: i for i, n in enumerate(msg.name)}
        return np.array([msg.position[index[n]] for n in JOINTS])

    def status(self) -> dict[str, Any]:
        """Latest `/sim/task_state`."""
        with self._lock:
            if self._status is None:
                raise EpisodeError("no /sim/task_state yet")
            return dict(self._status)

    def fresh_status(self, timeout: float = 5.0) -> dict[str, Any]:
        """A task state published after this call (so it reflects the arm as it is now)."""
        with self._lock:
            seen = self._status_count
        if not wait_until(lambda: self._status_count >= seen + 2, timeout, 0.02):
            raise EpisodeError("/sim/task_state stopped arriving")
        return self.status()

    def wait_ready(self, timeout: float, alive: Callable[[], None] = lambda: None) -> None:
        """Wait for joint states, the task state and the reset service (the stack is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive()
            with self._lock:
                ready = self._joints is not None and self._status is not None
            if self._policy:
                with self._lock:
                    ready = ready and bool(self._policy_status)
            if ready and self._reset.service_is_ready() and self._traj.get_subscription_count() > 0:
                return
            time.sleep(0.1)
        raise EpisodeError(
            f"the simulation did not come up within {timeout:.0f} s (joint states, task state)"
        )

    # --- commands ---------------------------------------------------------------------------------
    def send(self, motion: Motion) -> None:
        """Publish a motion as a JointTrajectory starting now."""
        msg = JointTrajectory(joint_names=JOINTS)
        for t, pos in zip(motion.times, motion.positions, strict=True):
            msg.points.append(
                JointTrajectoryPoint(
                    positions=[float(v) for v in pos], time_from_start=seconds_to_duration(float(t))
                )
            )
        self._traj.publish(msg)

    def execute(self, motion: Motion, timeout_margin: float = 10.0) -> None:
        """Send `motion` and wait until the arm (or the gripper) has come to rest at its end."""
        self.send(motion)
        start = time.monotonic()
        deadline = start + motion.duration + timeout_margin
        last = self.joints()
        still_since: float | None = None
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.joints()
            if time.monotonic() - start < motion.duration:
                last = now
                continue
            if motion.settle == "arm":
                if np.max(np.abs(now[:6] - motion.final[:6])) < 0.01:
                    return
            else:
                moving = abs(now[6] - last[6]) > 0.002
                still_since = None if moving else (still_since or time.monotonic())
                if still_since is not None and time.monotonic() - still_since > 0.2:
                    return
            last = now
        raise EpisodeError(
            f"motion {motion.name!r} did not finish within {motion.duration + timeout_margin:.1f} s"
        )

    def home(self, speed: float = 0.6, acc: float = 2.0) -> None:
        """Move to the ready pose with the gripper open (through the driver, never teleporting)."""
        now = self.joints()
        goal = np.array([*READY_JOINTS, GRIPPER_OPEN])
        path = np.linspace(now, goal, 20)
        times = trapezoid_times(path[:, :6], speed, acc, min_duration=0.6)
        self.execute(Motion("home", times[1:], path[1:]))

    def _call(self, client: Any, request: Any, timeout: float = 30.0) -> Any:
        if not client.wait_for_service(timeout_sec=timeout):
            raise EpisodeError(f"service {client.srv_name} is not available")
        future = client.call_async(request)
        if not wait_until(future.done, timeout, 0.02):
            raise EpisodeError(f"service {client.srv_name} did not answer within {timeout:.0f} s")
        return future.result()

    def reset_scene(self, task: str, seed: int) -> None:
        """Lay out `task` from `seed` and wait until the task state shows it."""
        reply = self._call(self._reset, SetTask.Request(task=f"{task} {seed}"))
        if not reply.success:
            raise EpisodeError(f"/sim/reset refused: {reply.message}")
        if not wait_until(lambda: (self.status()["task"], self.status()["seed"]) == (task, seed), 10.0, 0.02):
            raise EpisodeError("task state does not show the reset")

    def start_recording(self, task: str) -> int:
        """Start a recorder episode; returns its index."""
        reply = self._call(self._start, StartEpisode.Request(task=task))
        if not reply.success:
            raise EpisodeError(f"recorder refused to start: {reply.message}")
        return int(reply.episode_index)

    def stop_recording(self, save: bool) -> str:
        """Save (True) or discard (False) the recorder's episode; returns its message."""
        reply = self._call(self._save if save else self._discard, Trigger.Request(), timeout=180.0)
        if not reply.success:
            raise EpisodeError(f"recorder {'save' if save else 'discard'} failed: {reply.message}")
        return reply.message

    def run_expert(
        self, task: str, time_limit: float, settings: ExpertSettings | None = None
    ) -> tuple[bool, list[str], str]:
        """Run the scripted expert until it is done or `time_limit` s pass; (success, motions, error)."""
        expert_settings = settings or ExpertSettings()
        expert_settings.scene = self.status()["scene"]
        expert = ScriptedExpert(task, expert_settings)
        deadline = time.monotonic() + time_limit
        error = ""
        try:
            while time.monotonic() < deadline:
                status = self.fresh_status()
                joints = self.joints()
                motion = expert.next_motion(joints[:6], joints[6], status)
                if motion is None:
                    break
                self.execute(motion, timeout_margin=max(1.0, min(10.0, deadline - time.monotonic())))
            else:
                error = f"time limit of {time_limit:.0f} s reached"
        except (ExpertError, EpisodeError) as exc:
            error = str(exc)
        # success needs the object at rest: give physics a moment to settle it
        wait_until(lambda: self.status().get("success_time") is not None, 3.0, 0.02)
        return self.status().get("success_time") is not None, list(expert.log), error

    def run_policy(self, prompt: str, time_limit: float) -> tuple[bool, str, list[float]]:
        """Let the evo1_policy node act until success or `time_limit` s; (success, error, latencies s)."""
        if not self._policy:
            raise EpisodeError("this client was made without a policy namespace")
        reply = self._call(self._policy_task, SetTask.Request(task=prompt))
        if not reply.success:
            raise EpisodeError(f"policy refused the task: {reply.message}")
        with self._lock:
            self._policy_status.clear()
        reply = self._call(self._policy_start, Trigger.Request())
        if not reply.success:
            raise EpisodeError(f"policy refused to start: {reply.message}")
        error = ""
        if not wait_until(lambda: self.status().get("success_time") is not None, time_limit, interval=0.1):
            error = f"time limit of {time_limit:.0f} s reached"
        self._call(self._policy_stop, Trigger.Request())
        with self._lock:
            statuses = list(self._policy_status)
        latencies: list[float] = []
        last_chunks = -1
        for st in statuses:  # one latency per new chunk
            if st.chunks_computed != last_chunks and st.last_inference_latency > 0:
                latencies.append(float(st.last_inference_latency))
                last_chunks = st.chunks_computed
        faults = {st.fault for st in statuses if st.state == PolicyStatus.FAULT and st.fault}
        if faults:
            error = "; ".join([*sorted(faults), *([error] if error else [])])
        return self.status().get("success_time") is not None, error, latencies


@contextlib.contextmanager
def ros_client(policy: bool = False) -> Any:
    """rclpy initialised for the duration, with an `EpisodeClient` (talking to /evo1_policy if `policy`)."""
    rclpy.init(args=[])
    client = EpisodeClient(policy_ns="/evo1_policy" if policy else "")
    try:
        yield client
    finally:
        client.close()
        rclpy.try_shutdown()

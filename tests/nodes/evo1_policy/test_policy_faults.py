"""Every fault of evo1_policy ends with the arm holding (an empty trajectory, nothing after it) and the
reason in ~/status; inputs that come back resume motion; a bad checkpoint stops the node at start."""

from __future__ import annotations

import shutil
import sys

import pytest
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from evo1_msgs.msg import PolicyStatus
from evo1_ros.polling import wait_until
from fixtures.policy import make_checkpoint
from fixtures.ros import Collector, call
from fixtures.sensors import SensorPublisher


class Rig:
    """A started policy node with its inputs flowing and its outputs collected."""

    def __init__(self, ros, node, sensors_kwargs=None) -> None:
        self.node = node
        self.client = ros.node("fault_test_client")
        self.sensors = SensorPublisher(self.client, **(sensors_kwargs or {}))
        self.trajs = Collector(self.client, JointTrajectory, "/xarm/joint_trajectory")
        self.status = Collector(self.client, PolicyStatus, "/evo1_policy/status")

    def start(self, wait_running: bool = True) -> None:
        assert call(self.client, Trigger, "/evo1_policy/start").success
        if wait_running:
            assert wait_until(lambda: self.state() == PolicyStatus.RUNNING, 60), self.status.last()

    def state(self) -> int | None:
        last = self.status.last()
        return None if last is None else last.state

    def wait_state(self, state: int, words: str, timeout: float = 30.0) -> PolicyStatus:
        def ok() -> bool:
            last = self.status.last()
            return last is not None and last.state == state and words in last.fault

        assert wait_until(ok, timeout), self.status.last()
        return self.status.last()

    def assert_holding(self) -> None:
        """The last command is "stop and hold", and nothing moving follows it."""
        assert wait_until(lambda: self.trajs.last() is not None and len(self.trajs.last().points) == 0, 10)
        n = len(self.trajs)
        wait_until(lambda: len(self.trajs) > n, 1.0)
        assert all(len(m.points) == 0 for m in self.trajs.snapshot()[n - 1 :])

    def close(self) -> None:
        self.sensors.close()


@pytest.fixture
def rig(ros, checkpoint, make_policy_node):
    made = []

    def _rig(ckpt=None, sensors=None, **params) -> Rig:
        params.setdefault("task", "pick up the can")
        # Generous ages: the model shares this process with the test's publishers, and on a loaded
        # machine its Python work can delay them; the stale-input tests go well past these.
        params.setdefault("max_state_age", 1.0)
        params.setdefault("max_obs_age", 1.0)
        r = Rig(ros, make_policy_node(ckpt or checkpoint, **params), sensors)
        made.append(r)
        return r

    yield _rig
    for r in made:
        r.close()


def test_camera_stops_then_resumes(rig):
    r = rig()
    r.start()
    r.sensors.paused.add("wrist")
    st = r.wait_state(PolicyStatus.HOLDING, "wrist")
    assert "old" in st.fault and st.observations_dropped >= 0
    r.assert_holding()
    r.sensors.paused.clear()
    assert wait_until(lambda: r.state() == PolicyStatus.RUNNING, 60), r.status.last()
    assert len(r.trajs.last().points) > 0


def test_joint_states_stale(rig):
    r = rig()
    r.start()
    r.sensors.stamp_offset["joint_states"] = 3.0
    r.wait_state(PolicyStatus.HOLDING, "joint_states")
    r.assert_holding()


def test_wrong_encoding(rig):
    r = rig()
    r.start()
    r.sensors.encoding["base"] = "mono8"
    st = r.wait_state(PolicyStatus.HOLDING, "encoding 'mono8'")
    assert st.observations_dropped > 0
    r.assert_holding()


def test_wrong_size(rig):
    r = rig(image_height=64, image_width=64)
    r.start()
    r.sensors.size = (32, 48)
    r.wait_state(PolicyStatus.HOLDING, "32x48")
    r.assert_holding()


def test_model_raises(rig):
    r = rig()
    r.start()

    def broken(*args, **kwargs):
        # A GPU running out of memory mid-run cannot be produced on this CPU; everything else is real.
        raise RuntimeError("CUDA error: out of memory")

    r.node.worker.policy.predict = broken
    st = r.wait_state(PolicyStatus.FAULT, "model raised: RuntimeError: CUDA error: out of memory")
    assert st.state == PolicyStatus.FAULT
    r.assert_holding()


def test_model_returns_nan(rig, tmp_path):
    ckpt = make_checkpoint(tmp_path / "nan", nan_weights=True)
    r = rig(ckpt, warmup=False)
    r.start(wait_running=False)
    r.wait_state(PolicyStatus.FAULT, "NaN")
    assert all(len(m.points) == 0 for m in r.trajs.snapshot())  # it never moved


def test_inference_slower_than_horizon(rig):
    # 2 steps at 200 Hz = a 10 ms horizon; the tiny model needs far longer on this CPU.
    r = rig(control_rate=200.0, n_action_steps=2)
    r.start(wait_running=False)
    r.wait_state(PolicyStatus.FAULT, "slower than the horizon")
    assert all(len(m.points) == 0 for m in r.trajs.snapshot())


def test_driver_fault_stops_the_policy(rig):
    r = rig()
    r.start()
    pub = r.client.create_publisher(DiagnosticStatus, "/xarm/driver_status", 10)
    msg = DiagnosticStatus(
        level=DiagnosticStatus.ERROR,
        message="FAULT: C31 collision",
        values=[KeyValue(key="state", value="FAULT")],
    )
    assert wait_until(lambda: pub.get_subscription_count() > 0, 10)
    pub.publish(msg)
    r.wait_state(PolicyStatus.FAULT, "driver FAULT: FAULT: C31 collision")
    r.assert_holding()
    # While the driver is in FAULT, ~/start is refused with the reason.
    resp = call(r.client, Trigger, "/evo1_policy/start")
    assert not resp.success and "FAULT" in resp.message


def test_missing_checkpoint_exits_2_with_one_line(spawn, tmp_path):
    """The real executable: one line naming the problem, exit code 2, no traceback."""
    ckpt = tmp_path / "does_not_exist"
    argv = [sys.executable, "-m", "evo1_ros.nodes.evo1_policy", "--ros-args", "-p", f"checkpoint:={ckpt}"]
    proc = spawn(argv, name="policy")
    assert wait_until(lambda: proc.proc.poll() is not None, 120), proc.output()
    out = proc.output()
    assert proc.proc.returncode == 2, out
    errors = [line for line in out.splitlines() if "cannot start" in line]
    assert len(errors) == 1 and f"checkpoint folder not found: {ckpt}" in errors[0], out
    assert "Traceback" not in out


@pytest.mark.parametrize("problem", ["truncated", "not_a_checkpoint", "no_fps", "wrong_joints"])
def test_bad_checkpoint_stops_start_up(make_policy_node, checkpoint, tmp_path, problem):
    """Each start-up error is a ValueError subclass (run_node turns it into one line and exit 2)."""
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoint, ckpt)
    params = {}
    if problem == "truncated":
        weights = ckpt / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
        expected = "model.safetensors is truncated"
    elif problem == "not_a_checkpoint":
        (ckpt / "model.safetensors").unlink()
        expected = "holds neither model.safetensors"
    elif problem == "no_fps":
        (ckpt / "training.json").unlink()
        expected = "set control_rate:=HZ"
    else:
        params["joint_names"] = ["joint1", "joint2"]
        expected = "the checkpoint's state/action have 7/7 dims but joint_names has 2"
    with pytest.raises(ValueError) as exc:
        make_policy_node(ckpt, **params)
    assert expected in str(exc.value) and "\n" not in str(exc.value)


def test_missing_joint_is_an_error_not_zeros(rig):
    r = rig(sensors={"joints": ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6")})
    # Each joint state is counted as dropped, naming the joint; start is refused with that reason.
    assert wait_until(lambda: r.status.last() is not None and r.status.last().observations_dropped > 0, 30)
    resp = call(r.client, Trigger, "/evo1_policy/start")
    assert not resp.success and "['drive_joint'] are not in the joint state" in resp.message, resp.message
    assert r.state() == PolicyStatus.IDLE and len(r.trajs) == 0

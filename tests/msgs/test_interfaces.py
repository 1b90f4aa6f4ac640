"""Every evo1_msgs type crosses a process boundary intact; both services answer across processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from evo1_msgs.msg import ActionChunk, PolicyStatus, RecorderStatus
from evo1_msgs.srv import SetTask, StartEpisode
from evo1_ros.polling import wait_until
from fixtures.ros import Collector, python_script_argv

PEER = Path(__file__).with_name("interface_peer.py")


@pytest.fixture
def peer(spawn):
    proc = spawn(python_script_argv(PEER), name="interface_peer")
    assert proc.wait_for_output("peer ready", timeout=20), proc.output()
    return proc


def test_messages_cross_processes(ros, peer):
    node = ros.node("receiver")
    chunks = Collector(node, ActionChunk, "action_chunk")
    statuses = Collector(node, PolicyStatus, "policy_status")
    recs = Collector(node, RecorderStatus, "recorder_status")
    for c in (chunks, statuses, recs):
        assert c.wait(1, timeout=20), peer.output()

    chunk = chunks.last()
    assert chunk.horizon == 3 and chunk.action_dim == 7
    assert list(chunk.joint_names) == [f"joint{i}" for i in range(1, 7)] + ["drive_joint"]
    assert list(chunk.actions) == [0.001 * i for i in range(21)]  # float64: exact
    assert chunk.step_period == pytest.approx(1 / 30, abs=0)
    assert chunk.chunk_index == 2**40 + 5
    assert chunk.task == "pick up the can"
    assert chunk.header.stamp.sec > 0

    status = statuses.last()
    assert status.state == PolicyStatus.HOLDING == 2
    assert status.fault.startswith("observation stale")
    assert (status.chunks_computed, status.commands_sent, status.observations_dropped) == (12, 340, 3)
    assert status.observation_age == 0.8

    rec = recs.last()
    assert rec.state == RecorderStatus.RECORDING
    assert list(rec.stream_names) == ["front", "wrist", "joint_states"]
    assert list(rec.stream_ages) == [0.01, 0.02, -1.0]
    assert (rec.episode_index, rec.frames_recorded, rec.frames_dropped) == (4, 120, 2)


def _call(node, srv_type, name, request):
    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=20)
    future = client.call_async(request)
    assert wait_until(future.done, 10)
    return future.result()


def test_services_cross_processes(ros, peer):
    node = ros.node("caller")
    ok = _call(node, SetTask, "set_task", SetTask.Request(task="stack the cans"))
    assert ok.success and ok.message == "STACK THE CANS"
    bad = _call(node, SetTask, "set_task", SetTask.Request(task="   "))
    assert not bad.success and "empty" in bad.message
    ep = _call(node, StartEpisode, "start_episode", StartEpisode.Request(task="hand delivery"))
    assert ep.success and ep.episode_index == 7 and "hand delivery" in ep.message


def test_constants_are_distinct():
    states = [PolicyStatus.IDLE, PolicyStatus.RUNNING, PolicyStatus.HOLDING, PolicyStatus.FAULT]
    assert states == [0, 1, 2, 3]
    rec_states = [
        RecorderStatus.IDLE,
        RecorderStatus.RECORDING,
        RecorderStatus.SAVING,
        RecorderStatus.RESETTING,
        RecorderStatus.ERROR,
    ]
    assert len(set(rec_states)) == 5

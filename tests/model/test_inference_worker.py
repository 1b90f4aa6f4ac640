"""Inference worker and deployment loading (no ROS), with the real tiny Evo-1."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from evo1_ros.model import checkpoint_format, checkpoint_fps, load_policy, resolve_device, resolve_dtype
from evo1_ros.model.errors import CheckpointError
from evo1_ros.model.inference_worker import InferenceRequest, InferenceWorker
from fixtures.models import REFERENCE_DIR


def request(i: int, task: str = "pick up the can") -> InferenceRequest:
    img = np.full((32, 32, 3), 10 * i, np.uint8)
    return InferenceRequest([img, img], [True, True], np.zeros(7), task, obs_stamp=float(i), request_id=i)


@pytest.fixture(scope="module")
def policy(checkpoint):
    return load_policy(checkpoint, device="cpu")


def test_both_formats_load_and_errors_are_one_line(checkpoint, tmp_path):
    assert checkpoint_format(checkpoint) == "project"
    assert checkpoint_format(REFERENCE_DIR) == "official"
    assert load_policy(REFERENCE_DIR, device="cpu").norm_stats.action_dim == 7
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        load_policy(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"holds neither model\.safetensors"):
        load_policy(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="no checkpoint given"):
        checkpoint_format("")


def test_training_fps_is_read_when_recorded(checkpoint, tmp_path):
    assert checkpoint_fps(checkpoint) == 10.0
    assert checkpoint_fps(REFERENCE_DIR) is None
    (tmp_path / "training.json").write_text(json.dumps({"fps": -3}))
    with pytest.raises(CheckpointError, match="fps must be a positive number"):
        checkpoint_fps(tmp_path)


def test_device_and_dtype_choices():
    assert resolve_device("CPU") == "cpu"
    assert resolve_dtype("auto", "cpu") == "float32" and resolve_dtype("auto", "cuda:0") == "bfloat16"
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")


def test_seed_makes_chunks_repeatable(policy):
    a = InferenceWorker(policy, print, print, seed=3, num_steps=4).predict(request(1))
    b = InferenceWorker(policy, print, print, seed=3, num_steps=4).predict(request(1))
    c = InferenceWorker(policy, print, print, seed=4, num_steps=4).predict(request(1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (50, 7) and not np.allclose(a, c)


def test_newest_request_replaces_a_pending_one_and_errors_reach_the_callback(policy):
    results, errors = [], []
    gate = threading.Event()

    def on_result(res):
        results.append(res.request.request_id)
        gate.wait(30)  # hold the thread (busy) so the next requests queue up

    worker = InferenceWorker(policy, on_result, lambda req, exc: errors.append((req.request_id, exc)), seed=0)
    worker.start()
    try:
        worker.submit(request(1))
        assert _wait(lambda: results == [1], 60)
        assert worker.submit(request(2))
        assert not worker.submit(request(3))  # 2 had not started: replaced by the newer 3
        gate.set()
        assert _wait(lambda: results == [1, 3], 60), results
        assert worker.replaced == 1
        bad = request(4)
        bad.state = np.zeros(3)  # the model takes 7 state values: it raises
        worker.submit(bad)
        assert _wait(lambda: errors, 60)
        assert errors[0][0] == 4 and "7 values" in str(errors[0][1])
    finally:
        gate.set()
        worker.stop()


def _wait(pred, timeout: float) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return bool(pred())

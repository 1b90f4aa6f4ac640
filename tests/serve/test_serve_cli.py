"""`evo1 serve` as a real process: a project-format checkpoint served, answered, stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed

from evo1_ros.cli.main import main as evo1_main
from evo1_ros.model import Evo1Policy, NormStats
from evo1_ros.model.processing.tokenizer import load_tokenizer
from evo1_ros.serve.client import Evo1Client
from evo1_ros.serve.protocol import build_request, parse_reply
from fixtures.models import REFERENCE_DIR, make_tiny_model

from .conftest import images

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 240.0  # torch import + model load on a busy 2-core machine


@pytest.fixture(scope="module")
def project_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random model saved in the project format (safetensors + config + stats + tokenizer)."""
    directory = tmp_path_factory.mktemp("project_ckpt")
    policy = Evo1Policy(
        make_tiny_model(seed=31),
        load_tokenizer(REFERENCE_DIR / "tokenizer"),
        NormStats.load(REFERENCE_DIR / "norm_stats.json"),
    )
    policy.save_pretrained(directory)
    return directory


def _lines(stream, out: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        out.put(line)
    out.put(None)


def _wait_for_log(path: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert proc.poll() is None, f"evo1 serve exited early:\n{path.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} in the log after {timeout} s:\n{path.read_text()}"
        time.sleep(0.05)


def test_serve_subprocess_answers_and_exits_cleanly_on_ctrl_c(
    project_checkpoint: Path, tmp_path: Path
) -> None:
    """Project checkpoint through the CLI; Ctrl-C with a request in flight: it is still answered, an idle
    connection is closed with 1001 (going away), and the process exits 0."""
    log_path = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "evo1_ros.cli.main", "serve", "--checkpoint", str(project_checkpoint)]
    argv += ["--port", "0", "--device", "cpu", "--seed", "3", "--num-steps", "4", "--log-level", "DEBUG"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=STARTUP_TIMEOUT_S)
            assert line is not None, f"evo1 serve exited early:\n{log_path.read_text()}"
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].strip()
        assert url.startswith("ws://127.0.0.1:"), url  # loopback by default

        views = [*images(21, [(448, 448), (240, 320)]), np.zeros((448, 448, 3), np.uint8)]
        state = [0.0, 10.0, -30.0, 0.0, 45.0, 0.0, 500.0]
        amask = [1] * 7 + [0] * 17
        request = json.dumps(
            build_request(views, [1, 1, 0], state, "stack the cups", amask, image_encoding="b64")
        )
        with Evo1Client(url) as idle, Evo1Client(url) as client:
            reply = parse_reply(client.send_raw(request))

            direct = Evo1Policy.from_pretrained(project_checkpoint)
            resized = cv2.resize(views[1], (448, 448), interpolation=cv2.INTER_LINEAR)  # the official resize
            rgb = [views[0][..., ::-1].copy(), resized[..., ::-1].copy(), None]
            expected = direct.predict(rgb, [1, 1, 0], np.asarray(state), "stack the cups", amask, 4, 3)
            assert reply.shape == (50, 24)
            np.testing.assert_allclose(reply[:, :7], expected, rtol=1e-6, atol=1e-6)

            client.send(request)
            _wait_for_log(log_path, "request 2 from", proc, STARTUP_TIMEOUT_S)
            proc.send_signal(signal.SIGINT)
            np.testing.assert_array_equal(parse_reply(client.receive()), reply)  # in flight: still answered
            with pytest.raises(ConnectionClosed) as closed:
                idle.receive()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    text = log_path.read_text()
    assert "request 1 from" in text and "model" in text, text  # per-request latency line
    assert "stopped" in text, text


def test_bad_checkpoint_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evo1_main(["serve", "--checkpoint", str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("evo1 serve: error: ") and "mp_rank_00_model_states.pt" in err[-1]


def test_port_in_use_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = evo1_main(
            ["serve", "--checkpoint", str(REFERENCE_DIR), "--device", "cpu", "--port", str(port)]
        )
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_bad_device_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert evo1_main(["serve", "--checkpoint", str(REFERENCE_DIR), "--device", "tpu"]) == 2
    assert "--device must be auto, cpu, cuda or cuda:N" in capsys.readouterr().err

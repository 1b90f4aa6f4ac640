"""Two processes under `torchrun` or `accelerate launch` (CPU, gloo) train like one process with the same
global batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from evo1_ros.train.logs import read_log
from evo1_ros.train.trainer import Trainer, train
from fixtures.training import TINY_MODEL, tiny_config

COMMON = dict(steps=3, batch_size=4, num_workers=0, augmentation=True, warmup_steps=1)
ACCELERATE = Path(sys.executable).with_name("accelerate")


@pytest.fixture(scope="module")
def one_process(synth_ds: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("one")
    train(tiny_config([str(synth_ds)], root / "run", **COMMON), log=lambda _: None)
    init = Trainer(
        tiny_config([str(synth_ds)], root / "init", **COMMON), log=lambda _: None
    ).model.state_dict()
    return root / "run", init


def _args(synth_ds: Path, out: Path) -> list[str]:
    model = [f"model.{k}={v}" for k, v in TINY_MODEL.items()]
    rest = [f"{k}={v}" for k, v in COMMON.items()]
    return [
        "-m",
        "evo1_ros.train",
        "--dataset",
        str(synth_ds),
        "--out",
        str(out),
        *model,
        *rest,
        "lr=1e-3",
        "device=cpu",
        "threads=1",
        "progress=false",
        "tensorboard=false",
        "validate_datasets=off",
        "log_interval=1",
    ]


def _compare(one: Path, init: dict, two: Path, proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout
    a = [float(r["loss"]) for r in read_log(one / "train_log.csv")]
    b = [float(r["loss"]) for r in read_log(two / "train_log.csv")]
    assert len(a) == len(b) == 3
    assert all(abs(x - y) < 1e-5 for x, y in zip(a, b, strict=True)), (a, b)
    wa = load_file(str(one / "model.safetensors"))
    wb = load_file(str(two / "model.safetensors"))
    assert wa.keys() == wb.keys()
    # Gradients are summed in another order across ranks (float rounding ~1e-9). Adam divides by sqrt(v), so
    # where the true gradient is ~0 (key biases: softmax ignores them) that noise becomes steps of order lr;
    # everything else agrees far more closely. Training itself moved the weights by ~lr per step.
    diff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    moved = max(float((wa[k] - init[k]).abs().max()) for k in wa)
    assert diff < 1e-4 and moved > 1e-3, (diff, moved)
    key_bias_free = [k for k in wa if not k.endswith("in_proj_bias")]
    assert all(torch.allclose(wa[k], wb[k], rtol=1e-4, atol=2e-5) for k in key_bias_free)


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=280)


def test_torchrun_two_processes_match_one(synth_ds: Path, tmp_path: Path, one_process) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = _run([*launcher, *_args(synth_ds, tmp_path / "ddp")])
    _compare(*one_process, tmp_path / "ddp", proc)


@pytest.mark.slow  # same DDP path as torchrun (accelerate only sets the env); ~30 s more on 2 busy cores
@pytest.mark.skipif(shutil.which(str(ACCELERATE)) is None, reason="accelerate is not installed")
def test_accelerate_launch_two_processes_match_one(synth_ds: Path, tmp_path: Path, one_process) -> None:
    launcher = [
        str(ACCELERATE),
        "launch",
        "--multi_gpu",  # = DDP; with no GPU visible the processes run on the CPU with gloo
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    proc = _run([*launcher, *_args(synth_ds, tmp_path / "acc")])
    _compare(*one_process, tmp_path / "acc", proc)

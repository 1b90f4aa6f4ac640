"""Resume is exact, stage 1 leaves the VLM untouched, stage 2 starts from stage 1 and trains everything."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from evo1_ros.train.config import TrainConfigError
from evo1_ros.train.logs import read_log
from evo1_ros.train.trainer import Trainer, train
from fixtures.training import tiny_config


def _quiet(_: str) -> None:
    pass


def test_resume_continues_with_the_same_batch_and_ends_bit_identical(synth_ds: Path, tmp_path: Path) -> None:
    # workers decode video and augment (2 of them), as in a real run
    common = dict(steps=6, batch_size=4, num_workers=2, augmentation=True, ckpt_interval=3)
    full = train(tiny_config([str(synth_ds)], tmp_path / "full", **common), log=_quiet)
    part = tiny_config([str(synth_ds)], tmp_path / "split", stop_at_step=3, **common)
    first = train(part, log=_quiet)
    assert first.steps == 3 and not (tmp_path / "split" / "model.safetensors").exists()
    resumed = Trainer(tiny_config([str(synth_ds)], tmp_path / "split", resume=True, **common), log=_quiet)
    assert resumed.step == 3
    end = resumed.run()
    assert end.steps == full.steps == 6

    a = read_log(tmp_path / "full" / "train_log.csv")
    b = read_log(tmp_path / "split" / "train_log.csv")
    assert [r["step"] for r in b] == [str(s) for s in range(1, 7)]
    assert [r["batch_hash"] for r in a] == [r["batch_hash"] for r in b]  # same batches, incl. step 4
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    wa = load_file(str(tmp_path / "full" / "model.safetensors"))
    wb = load_file(str(tmp_path / "split" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_finished_run_is_not_overwritten_and_resume_needs_a_checkpoint(
    synth_ds: Path, tmp_path: Path
) -> None:
    with pytest.raises(TrainConfigError, match="holds no checkpoint"):
        Trainer(tiny_config([str(synth_ds)], tmp_path / "new", resume=True), log=_quiet)
    train(tiny_config([str(synth_ds)], tmp_path / "run", steps=1, batch_size=2), log=_quiet)
    with pytest.raises(TrainConfigError, match="already holds a training run"):
        Trainer(tiny_config([str(synth_ds)], tmp_path / "run", steps=1), log=_quiet)


def test_stage1_keeps_every_vlm_weight_and_stage2_trains_them(synth_ds: Path, tmp_path: Path) -> None:
    cfg = tiny_config([str(synth_ds)], tmp_path / "s1", steps=3, batch_size=4, tensorboard=True)
    trainer = Trainer(cfg, log=_quiet)
    vlm_before = {k: v.clone() for k, v in trainer.model.embedder.state_dict().items()}
    head_before = {k: v.clone() for k, v in trainer.model.action_head.state_dict().items()}
    trainer.run()
    vlm_after = trainer.model.embedder.state_dict()
    assert all(torch.equal(vlm_before[k], vlm_after[k]) for k in vlm_before)
    for name, p in trainer.model.embedder.named_parameters():
        assert p.grad is None and not p.requires_grad, name
    assert list((tmp_path / "s1" / "tensorboard").glob("events.out.tfevents.*"))
    head_after = trainer.model.action_head.state_dict()
    assert any(not torch.equal(head_before[k], head_after[k]) for k in head_before)

    s2 = Trainer(
        tiny_config(
            [str(synth_ds)],
            tmp_path / "s2",
            steps=2,
            batch_size=4,
            stage="stage2",
            init=str(tmp_path / "s1"),
            gradient_checkpointing=True,
        ),
        log=_quiet,
    )
    start = s2.model.state_dict()
    saved = load_file(str(tmp_path / "s1" / "model.safetensors"))
    assert all(torch.equal(start[k], saved[k]) for k in saved)  # stage 2 starts from stage 1's weights
    assert s2.step == 0 and s2.scheduler.last_epoch == 0  # optimizer/scheduler/step reset
    s2.run()
    after = s2.model.embedder.state_dict()
    changed = [k for k in vlm_after if not torch.equal(vlm_after[k], after[k])]
    assert len(changed) > len(vlm_after) // 2  # the VLM trains in stage 2

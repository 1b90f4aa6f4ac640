"""`--vlm DIR`: the backbone comes from a local InternVL3 folder (remote-code key layout), the head is new."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from evo1_ros.model import Evo1Config, Evo1Model
from evo1_ros.model.checkpoints.official_keys import ours_to_official
from evo1_ros.model.processing.tokenizer import build_byte_level_tokenizer
from evo1_ros.train.config import TrainConfigError
from evo1_ros.train.trainer import Trainer
from fixtures.training import TINY_MODEL, tiny_config

PREFIX = "embedder.model."


def _fake_internvl(folder: Path, seed: int) -> Evo1Model:
    """A tiny InternVL3 folder: tokenizer + safetensors under the original module names (+ an lm_head)."""
    fields = {k: v for k, v in TINY_MODEL.items() if k != "preset"}
    torch.manual_seed(seed)
    source = Evo1Model(Evo1Config.tiny(img_context_token_id=259, **fields))
    official = ours_to_official({k: v for k, v in source.state_dict().items() if k.startswith(PREFIX)})
    state = {k[len(PREFIX) :]: v.contiguous() for k, v in official.items()}
    state["language_model.lm_head.weight"] = torch.zeros(4, 4)  # present in the real folder, not used
    build_byte_level_tokenizer(folder)
    save_file(state, str(folder / "model.safetensors"))
    return source


def test_vlm_folder_fills_every_backbone_weight(synth_ds: Path, tmp_path: Path) -> None:
    source = _fake_internvl(tmp_path / "internvl", seed=7)
    cfg = tiny_config([str(synth_ds)], tmp_path / "run", vlm=str(tmp_path / "internvl"))
    trainer = Trainer(cfg, log=lambda _: None)
    got, want = trainer.model.state_dict(), source.state_dict()
    backbone = [k for k in want if k.startswith(PREFIX)]
    assert backbone and all(torch.equal(got[k], want[k]) for k in backbone)
    head = [k for k in want if k.startswith("action_head.") and want[k].numel() > 1]
    assert any(not torch.equal(got[k], want[k]) for k in head)  # the head is freshly initialised


def test_vlm_folder_without_weights_is_refused(synth_ds: Path, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    build_byte_level_tokenizer(folder)
    with pytest.raises(TrainConfigError, match=r"no \*\.safetensors weights"):
        Trainer(tiny_config([str(synth_ds)], tmp_path / "run", vlm=str(folder)), log=lambda _: None)


def test_official_checkpoint_init_loads_every_weight(synth_ds: Path, tmp_path: Path) -> None:
    from evo1_ros.model import load_official_checkpoint

    ref = Path(__file__).resolve().parents[1] / "data" / "evo1_reference_A"
    cfg = tiny_config([str(synth_ds)], tmp_path / "run", init=f"official:{ref}", model={"preset": "tiny"})
    trainer = Trainer(cfg, log=lambda _: None)
    want = load_official_checkpoint(ref).model.state_dict()
    got = trainer.model.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert trainer.init.tokenizer_dir == ref / "tokenizer"

"""Project checkpoint format: save_pretrained / from_pretrained round trip and clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from evo1_ros.model import CheckpointError, Evo1Policy, load_pretrained, save_pretrained
from evo1_ros.model.checkpoints.pretrained import WEIGHTS_NAME
from fixtures.models import make_tiny_model, random_images


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tokenizer, norm_stats):
    directory = tmp_path_factory.mktemp("ckpt")
    model = make_tiny_model(seed=21)
    policy = Evo1Policy(model, tokenizer, norm_stats)
    policy.save_pretrained(directory)
    return directory, policy


def test_layout(saved):
    directory, _ = saved
    for name in ("model.safetensors", "config.json", "norm_stats.json", "tokenizer_config.json"):
        assert (directory / name).is_file(), name
    assert json.loads((directory / "config.json").read_text())["vlm_num_layers"] == 2


def test_round_trip_predicts_identically(saved):
    directory, policy = saved
    loaded = Evo1Policy.from_pretrained(directory)
    for key, value in policy.model.state_dict().items():
        assert torch.equal(value, loaded.model.state_dict()[key]), key
    images = random_images(3, [(300, 400)])
    state = np.array([1.0, 2.0, -3.0, 4.0, 5.0, -6.0, 100.0])
    a = policy.predict(images, [True], state, "put it in the box", num_steps=3, generator=1)
    b = loaded.predict(images, [True], state, "put it in the box", num_steps=3, generator=1)
    np.testing.assert_array_equal(a, b)


def test_overrides_change_run_time_fields(saved):
    directory, _ = saved
    loaded = load_pretrained(directory, attention_semantics="masked_head", num_inference_steps=8)
    assert loaded.config.attention_semantics == "masked_head"
    assert loaded.config.num_inference_steps == 8
    assert loaded.norm_stats is not None and loaded.tokenizer_dir == directory


def test_bfloat16_load(saved):
    directory, _ = saved
    loaded = load_pretrained(directory, dtype="bfloat16")
    assert loaded.model.action_head.dtype == torch.bfloat16
    rotary = loaded.model.embedder.model.language_model.rotary_emb
    assert rotary.inv_freq.dtype == torch.float32  # RoPE frequencies stay exact


def test_truncated_weights_raise(saved, tmp_path):
    directory, _ = saved
    target = tmp_path / "bad"
    shutil.copytree(directory, target)
    data = (target / WEIGHTS_NAME).read_bytes()
    (target / WEIGHTS_NAME).write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated"):
        load_pretrained(target)


def test_mismatched_config_raises(saved, tmp_path):
    directory, _ = saved
    target = tmp_path / "mismatch"
    shutil.copytree(directory, target)
    config = json.loads((target / "config.json").read_text())
    config["head_hidden_dim"] = 96
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_pretrained(target)


def test_missing_tensor_raises(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    directory, _ = saved
    target = tmp_path / "missing"
    shutil.copytree(directory, target)
    state = load_file(str(target / WEIGHTS_NAME))
    del state["action_head.norm_out.weight"]
    save_file(state, str(target / WEIGHTS_NAME))
    with pytest.raises(CheckpointError, match="missing key"):
        load_pretrained(target)


def test_missing_files_raise(saved, tmp_path):
    directory, _ = saved
    with pytest.raises(CheckpointError, match="not found"):
        load_pretrained(tmp_path / "nowhere")
    target = tmp_path / "noconfig"
    shutil.copytree(directory, target)
    (target / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load_pretrained(target)
    (target / WEIGHTS_NAME).unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_pretrained(target)


def test_official_directory_is_pointed_to_the_right_loader(reference_dir):
    with pytest.raises(CheckpointError, match="load_official_checkpoint"):
        load_pretrained(reference_dir)


def test_save_without_extras(tmp_path):
    model = make_tiny_model(seed=2)
    save_pretrained(model, tmp_path)
    loaded = load_pretrained(tmp_path)
    assert loaded.norm_stats is None and loaded.tokenizer_dir is None
    with pytest.raises(FileNotFoundError, match="norm_stats"):
        Evo1Policy.from_pretrained(tmp_path)

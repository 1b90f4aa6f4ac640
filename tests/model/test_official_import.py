"""Official-layout import: blocks written from the reference facts (official keys) match our imported
modules; a tiny model exported to the official layout and re-imported predicts identically; key reports;
weight sanity warnings."""

from __future__ import annotations

import argparse
import shutil
import warnings

import numpy as np
import pytest
import torch

from evo1_ros.model import (
    CheckpointError,
    Evo1Policy,
    export_official_checkpoint,
    load_official_checkpoint,
)
from evo1_ros.model.checkpoints.official import OFFICIAL_WEIGHTS
from fixtures.models import make_tiny_model, random_images

from .reference_layers import internvit_block, mlp1, qwen2_layer_rows

VIT = "embedder.model.vision_model.encoder.layers.0."
LLM = "embedder.model.language_model.model.layers.1."


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tokenizer, norm_stats):
    """A tiny model exported to the official layout, with fresh official-layout weights for the blocks
    under test (so the comparison cannot be circular)."""
    directory = tmp_path_factory.mktemp("official")
    model = make_tiny_model(seed=11)
    export_official_checkpoint(model, directory, norm_stats=norm_stats, arm_key="xarm6", tokenizer=tokenizer)
    payload = torch.load(directory / OFFICIAL_WEIGHTS, weights_only=True)
    module = payload["module"]
    gen = torch.Generator().manual_seed(123)
    for key in list(module):
        if key.startswith(VIT) or key.startswith("embedder.model.mlp1.") or key.startswith(LLM):
            tensor = module[key]
            fresh = torch.randn(tensor.shape, generator=gen)
            module[key] = fresh / tensor.shape[-1] ** 0.5 if tensor.dim() >= 2 else 0.5 + 0.2 * fresh
    torch.save(payload, directory / OFFICIAL_WEIGHTS)
    return directory, module, model


@pytest.fixture(scope="module")
def imported(exported):
    directory, _, _ = exported
    return load_official_checkpoint(directory)


def test_fused_qkv_is_split_in_q_k_v_order(imported):
    assert "embedder.model.vision_model.encoder.layers.0.attn.qkv.weight" not in imported.model.state_dict()
    assert imported.report.missing == [] and imported.report.unmapped == []


def test_internvit_block_matches_reference(exported, imported):
    _, official, _ = exported
    x = torch.randn(2, 1025, 64, generator=torch.Generator().manual_seed(0))
    layer = imported.model.embedder.model.vision_tower.encoder.layer[0]
    with torch.no_grad():
        ours = layer(x)
        ref = internvit_block(official, VIT, x, heads=4)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_projector_matches_reference(exported, imported):
    _, official, _ = exported
    x = torch.randn(3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = imported.model.embedder.model.multi_modal_projector(x)
    torch.testing.assert_close(ours, mlp1(official, "embedder.model.mlp1.", x), atol=1e-5, rtol=0)


def test_qwen2_layer_matches_reference(exported, imported):
    _, official, _ = exported
    cfg = imported.config
    llm = imported.model.embedder.model.language_model
    h = torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(2))
    keep = torch.ones(64, dtype=torch.bool)
    with torch.no_grad():
        positions = torch.arange(64).unsqueeze(0)
        cos_sin = llm.rotary_emb(h, positions)
        causal = torch.full((64, 64), float("-inf")).triu(1)[None, None]
        ours = llm.layers[1](h, attention_mask=causal, position_embeddings=cos_sin, position_ids=positions)
    ref = qwen2_layer_rows(
        official, LLM, h[0], keep, cfg.llm_num_heads, cfg.llm_num_kv_heads, cfg.rope_theta, flash=True
    )
    torch.testing.assert_close(ours[0], ref, atol=1e-5, rtol=0)


def test_export_and_reimport_predicts_identically(tmp_path, tokenizer, norm_stats):
    model = make_tiny_model(seed=12)
    original = Evo1Policy(model, tokenizer, norm_stats)
    export_official_checkpoint(model, tmp_path, norm_stats=norm_stats, arm_key="xarm6", tokenizer=tokenizer)
    reimported = Evo1Policy.from_official(tmp_path)
    images = random_images(0, [(240, 320), (480, 640)])
    state = np.array([10.0, -20.0, -50.0, 0.0, 30.0, 5.0, 400.0])
    a = original.predict(images, [True, True], state, "pick up the red can", num_steps=4, generator=5)
    b = reimported.predict(images, [True, True], state, "pick up the red can", num_steps=4, generator=5)
    np.testing.assert_array_equal(a, b)


def test_reports_unmapped_keys_and_refuses_missing_ones(exported, tmp_path):
    directory, official, _ = exported
    extra = dict(official)
    extra["embedder.model.language_model.lm_head.weight"] = torch.zeros(311, 64)
    extra["embedder.model.language_model.model.layers.2.input_layernorm.weight"] = torch.ones(64)
    target = tmp_path / "extra"
    shutil.copytree(directory, target)
    torch.save({"module": extra}, target / OFFICIAL_WEIGHTS)
    result = load_official_checkpoint(target, vlm_num_layers=2)
    assert result.report.unmapped == sorted(
        [
            "embedder.model.language_model.lm_head.weight",
            "embedder.model.language_model.model.layers.2.input_layernorm.weight",
        ]
    )
    assert "2 unmapped" in result.report.summary()

    missing = dict(official)
    del missing["action_head.seq_pool_proj.weight"]
    torch.save({"module": missing}, target / OFFICIAL_WEIGHTS)
    with pytest.raises(CheckpointError, match=r"seq_pool_proj\.weight"):
        load_official_checkpoint(target)


def test_weight_sanity_warns_about_absurd_magnitudes(exported, tmp_path):
    directory, official, _ = exported
    broken = dict(official)
    broken["embedder.model.vision_model.embeddings.position_embedding"] = (
        official["embedder.model.vision_model.embeddings.position_embedding"] * 1e37
    )
    nan_weight = official["action_head.norm_out.weight"].clone()
    nan_weight[3] = float("nan")
    broken["action_head.norm_out.weight"] = nan_weight
    target = tmp_path / "broken"
    shutil.copytree(directory, target)
    torch.save({"module": broken}, target / OFFICIAL_WEIGHTS)
    with pytest.warns(RuntimeWarning, match="look broken"):
        result = load_official_checkpoint(target)
    keys = {issue.key: issue for issue in result.weight_issues}
    assert keys["embedder.model.vision_model.embeddings.position_embedding"].max_abs > 1e30
    assert keys["action_head.norm_out.weight"].non_finite == 1
    assert len(keys) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_official_checkpoint(directory).weight_issues == []


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated"),
        (lambda p: p.write_bytes(b"not a checkpoint at all"), "could not be read"),
        (lambda p: torch.save({"model": {}}, p), "no 'module'"),
        (lambda p: torch.save({"module": {"x": object()}}, p), "allow_pickle=True"),
        (lambda p: p.unlink(), "not found"),
    ],
)
def test_malformed_official_checkpoints_raise_clear_errors(exported, tmp_path, corrupt, message):
    directory, _, _ = exported
    target = tmp_path / "bad"
    shutil.copytree(directory, target)
    corrupt(target / OFFICIAL_WEIGHTS)
    with pytest.raises(CheckpointError, match=message):
        load_official_checkpoint(target)


def test_official_config_problems(exported, tmp_path):
    directory, _, _ = exported
    target = tmp_path / "cfg"
    shutil.copytree(directory, target)
    (target / "config.json").write_text('{"action_head": "diffusion"}')
    with pytest.raises(CheckpointError, match="flowmatching"):
        load_official_checkpoint(target)
    (target / "config.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_official_checkpoint(target)
    (target / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load_official_checkpoint(target)


def test_deepspeed_metadata_needs_explicit_opt_in(exported, tmp_path):
    """Real DeepSpeed files may pickle objects next to the weights: refused by default, loadable on request."""
    directory, official, _ = exported
    target = tmp_path / "deepspeed"
    shutil.copytree(directory, target)
    torch.save(
        {"module": official, "args": argparse.Namespace(lr=1e-5), "ds_version": "0.14"},
        target / OFFICIAL_WEIGHTS,
    )
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        load_official_checkpoint(target)
    result = load_official_checkpoint(target, allow_pickle=True)
    assert result.report.missing == []

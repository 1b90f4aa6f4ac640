"""Acceptance: the official-checkpoint import reproduces fixture evo1_reference_A (original Evo-1 code,
float32 on CPU) to ≤ 1e-5 at every output the fixture stores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evo1_ros.model import load_official_checkpoint
from evo1_ros.model.processing.images import preprocess_views
from evo1_ros.model.processing.prompt import PromptTokenizer

TOL = 1e-5


def max_err(ours: torch.Tensor, ref: np.ndarray) -> float:
    ours_np = ours.detach().float().cpu().numpy()
    assert ours_np.shape == ref.shape, f"shape {ours_np.shape} vs reference {ref.shape}"
    return float(np.abs(ours_np - ref).max())


@pytest.fixture(scope="module", params=["eager", "sdpa"])
def imported(request, reference_dir):
    result = load_official_checkpoint(reference_dir, attn_implementation=request.param)
    return result


@pytest.fixture(scope="module")
def backbone_inputs(imported, reference_inputs, tokenizer):
    cfg = imported.config
    mask = [bool(x) for x in reference_inputs["image_mask"]]
    pixels = preprocess_views(list(reference_inputs["images"]), mask, cfg.image_size).unsqueeze(0)
    prompts = PromptTokenizer(tokenizer, cfg)
    ids, attn = prompts.encode([str(reference_inputs["prompt"][0])], torch.tensor([mask]))
    return pixels, ids, attn


def test_import_maps_every_key(imported):
    assert imported.report.unmapped == []
    assert imported.report.missing == []
    assert imported.report.mapped == len(imported.model.state_dict())
    assert imported.weight_issues == []
    assert imported.config.vlm_num_layers == 2
    assert imported.norm_stats is not None and imported.norm_stats.action_dim == 7
    assert imported.tokenizer_dir is not None


def test_prompt_and_mask_match_reference(backbone_inputs, reference_inputs):
    _, ids, attn = backbone_inputs
    np.testing.assert_array_equal(ids.numpy(), reference_inputs["input_ids"])
    np.testing.assert_array_equal(attn.numpy(), reference_inputs["attention_mask"])


def test_vision_and_fusion(imported, backbone_inputs, reference_outputs):
    with torch.no_grad():
        out = imported.model.embedder(*backbone_inputs)
    assert max_err(out.vit_embeds[0], reference_outputs["vit_embeds"]) <= TOL
    assert max_err(out.inputs_embeds, reference_outputs["llm_inputs_embeds"]) <= TOL


def test_fused_flash_everywhere(imported, backbone_inputs, reference_outputs):
    assert imported.config.attention_semantics == "flash"
    with torch.no_grad():
        out = imported.model.embed(*backbone_inputs)
    assert max_err(out.fused_tokens, reference_outputs["fused_flash"]) <= TOL


def test_fused_eager_at_attended_positions(imported, backbone_inputs, reference_outputs, reference_inputs):
    with torch.no_grad():
        out = imported.model.embedder(*backbone_inputs, flash_semantics=False)
    attended = reference_inputs["attention_mask"][0].astype(bool)
    ours = out.fused_tokens[0].numpy()[attended]
    assert float(np.abs(ours - reference_outputs["fused_eager"][0][attended]).max()) <= TOL
    # and the two semantics really differ on the masked rows (the test would catch a no-op)
    assert float(np.abs(out.fused_tokens[0].numpy() - reference_outputs["fused_flash"][0]).max()) > 0.1


def test_training_forward_velocity(imported, reference_inputs, reference_outputs):
    model = imported.model
    with torch.no_grad():
        result = model.flow_matching_loss(
            torch.from_numpy(reference_outputs["fused_flash"]),
            torch.from_numpy(reference_inputs["state"]),
            torch.from_numpy(reference_inputs["actions_gt"]),
            torch.from_numpy(reference_inputs["action_mask"]).bool().view(1, 1, 24).expand(1, 50, 24),
            t=torch.from_numpy(reference_inputs["t"]),
            noise=torch.from_numpy(reference_inputs["noise"]),
        )
    assert max_err(result.pred_velocity, reference_outputs["pred_velocity"]) <= TOL
    expected_target = (reference_inputs["actions_gt"] - reference_inputs["noise"]).reshape(1, -1)
    np.testing.assert_allclose(result.target.numpy(), expected_target, atol=1e-7)


def test_euler_sampling(imported, reference_inputs, reference_outputs):
    model = imported.model
    steps = int(reference_inputs["num_inference_steps"])
    result = model.sample_actions(
        torch.from_numpy(reference_outputs["fused_flash"]),
        torch.from_numpy(reference_inputs["state"]),
        torch.from_numpy(reference_inputs["action_mask"]).view(1, 24),
        num_steps=steps,
        x0=torch.from_numpy(reference_inputs["x0"]),
    )
    assert len(result.velocities) == steps
    for i, v in enumerate(result.velocities):
        assert max_err(v, reference_outputs["step_velocities"][i]) <= TOL, f"Euler step {i}"
    assert max_err(result.actions, reference_outputs["final_action"]) <= TOL


def test_sinusoidal_tables_match_checkpoint(reference_dir):
    from evo1_ros.model.modeling.head_layers import sinusoidal_table

    official = torch.load(reference_dir / "mp_rank_00_model_states.pt", weights_only=True)["module"]
    torch.testing.assert_close(
        sinusoidal_table(1000, 64), official["action_head.time_pos_enc.pe"], atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        sinusoidal_table(50, 64), official["action_head.action_encoder.pos_encoding.pe"], atol=1e-6, rtol=0
    )


def test_end_to_end_chunk_from_images(imported, backbone_inputs, reference_inputs, reference_outputs):
    """Images + prompt → backbone → Euler: the whole path at once reproduces the reference final action."""
    result = imported.model.predict_chunk(
        *backbone_inputs,
        torch.from_numpy(reference_inputs["state"]),
        torch.from_numpy(reference_inputs["action_mask"]),
        num_steps=int(reference_inputs["num_inference_steps"]),
        x0=torch.from_numpy(reference_inputs["x0"]),
    )
    assert max_err(result.actions, reference_outputs["final_action"]) <= TOL

"""`flash` semantics (masked query rows → zero attention output, masked keys invisible) on every CPU
backend, checked against a row-by-row reference; `masked_head` hides masked tokens from the head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evo1_ros.model.checkpoints.official_keys import ours_to_official
from evo1_ros.model.processing.images import preprocess_views
from evo1_ros.model.processing.prompt import PromptTokenizer
from fixtures.models import make_tiny_model, random_images

from .reference_layers import qwen2_layer_rows, rms_norm

VIEW_MASK = [True, False, True]  # an absent view in the middle
TASK = "stack the cans"  # short → long right padding


def _inputs(model, tokenizer, seed=0, absent_image=None):
    cfg = model.config
    images = random_images(seed, [(448, 448)] * 3)
    pixels = preprocess_views(images, VIEW_MASK, cfg.image_size)
    if absent_image is not None:  # replace the black absent view by arbitrary content
        pixels[1] = preprocess_views([absent_image], [True], cfg.image_size)[0]
    ids, attn = PromptTokenizer(tokenizer, cfg).encode([TASK], torch.tensor([VIEW_MASK]))
    return pixels.unsqueeze(0), ids, attn


@pytest.fixture(scope="module")
def model():
    return make_tiny_model(seed=3)


def test_case_has_padding_and_an_absent_view(model, tokenizer):
    _, ids, attn = _inputs(model, tokenizer)
    assert int((ids == tokenizer.pad_token_id).sum()) > 100
    assert int((attn == 0).sum()) > int((ids == tokenizer.pad_token_id).sum())  # + the absent view's 256


@pytest.fixture(scope="module")
def row_reference(model, tokenizer):
    """Reference fused tokens (flash and plain semantics) computed from the official-layout weights."""
    cfg = model.config
    pixels, ids, attn = _inputs(model, tokenizer)
    with torch.no_grad():
        h = model.embedder(pixels, ids, attn).inputs_embeds[0]
    official = ours_to_official(model.state_dict())
    keep = attn[0].bool()
    ref_flash, ref_plain = h.clone(), h.clone()
    for layer in range(cfg.vlm_num_layers):
        prefix = f"embedder.model.language_model.model.layers.{layer}."
        args = (cfg.llm_num_heads, cfg.llm_num_kv_heads, cfg.rope_theta)
        ref_flash = qwen2_layer_rows(official, prefix, ref_flash, keep, *args, flash=True)
        ref_plain = qwen2_layer_rows(official, prefix, ref_plain, keep, *args, flash=False)
    norm = official["embedder.model.language_model.model.norm.weight"]
    return rms_norm(ref_flash, norm), rms_norm(ref_plain, norm)


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
def test_flash_semantics_match_row_by_row_reference(model, tokenizer, row_reference, backend):
    pixels, ids, attn = _inputs(model, tokenizer)
    keep = attn[0].bool()
    model.embedder.set_attn_implementation(backend)
    try:
        with torch.no_grad():
            out = model.embedder(pixels, ids, attn, flash_semantics=True)
            eager_like = model.embedder(pixels, ids, attn, flash_semantics=False)
    finally:
        model.embedder.set_attn_implementation("sdpa")
    ref_flash, ref_plain = row_reference
    torch.testing.assert_close(out.fused_tokens[0], ref_flash, atol=1e-5, rtol=0)
    torch.testing.assert_close(eager_like.fused_tokens[0], ref_plain, atol=1e-5, rtol=0)
    # attended rows agree between the two semantics, masked rows do not
    diff = (out.fused_tokens[0] - eager_like.fused_tokens[0]).abs().amax(-1)
    assert float(diff[keep].max()) < 1e-5
    assert float(diff[~keep].min()) > 1e-3


def test_masked_rows_evolve_without_attention(model, tokenizer):
    """All padding rows share token and zero attention → identical outputs, whatever their position."""
    pixels, ids, attn = _inputs(model, tokenizer)
    with torch.no_grad():
        fused = model.embed(pixels, ids, attn).fused_tokens[0]
    pad_rows = fused[ids[0] == tokenizer.pad_token_id]
    assert float((pad_rows - pad_rows[0]).abs().max()) == 0.0


def test_masked_keys_are_invisible(model, tokenizer):
    """Changing the absent view's image changes only its own (masked) rows, never an attended row."""
    pixels_a, ids, attn = _inputs(model, tokenizer)
    pixels_b, _, _ = _inputs(model, tokenizer, absent_image=random_images(9, [(448, 448)])[0])
    assert float((pixels_a - pixels_b).abs().max()) > 0.5
    with torch.no_grad():
        a = model.embed(pixels_a, ids, attn).fused_tokens[0]
        b = model.embed(pixels_b, ids, attn).fused_tokens[0]
    keep = attn[0].bool()
    assert float((a[keep] - b[keep]).abs().max()) < 1e-6
    assert float((a[~keep] - b[~keep]).abs().max()) > 1e-3


def test_head_sees_masked_rows_only_under_flash(tokenizer):
    """flash: the head attends to all 1024 + state (absent-view content matters);
    masked_head: the padding mask is passed to the head (absent-view content cannot matter)."""
    results = {}
    for semantics in ("flash", "masked_head"):
        model = make_tiny_model(seed=3, attention_semantics=semantics)
        state = torch.zeros(1, 24)
        x0 = torch.rand(1, 1200, generator=torch.Generator().manual_seed(0)) * 2 - 1
        actions = []
        for absent in (None, random_images(9, [(448, 448)])[0]):
            pixels, ids, attn = _inputs(model, tokenizer, absent_image=absent)
            actions.append(
                model.predict_chunk(pixels, ids, attn, state, torch.ones(24), num_steps=3, x0=x0).actions
            )
        results[semantics] = float((actions[0] - actions[1]).abs().max())
    assert results["flash"] > 1e-4
    assert results["masked_head"] < 1e-5


def test_head_key_padding_mask_matches_dropping_the_tokens():
    """A key mask in the head equals removing those context tokens entirely."""
    model = make_tiny_model(seed=5)
    head = model.action_head
    gen = torch.Generator().manual_seed(1)
    fused = torch.randn(1, 40, 64, generator=gen)
    keep = torch.ones(1, 40, dtype=torch.bool)
    keep[0, 25:] = False
    state = torch.randn(1, 24, generator=gen)
    x = torch.rand(1, 1200, generator=gen) * 2 - 1
    with torch.no_grad():
        masked = head(fused, state, x, 300, context_mask=keep)
        dropped = head(fused[:, :25], state, x, 300)
    torch.testing.assert_close(masked, dropped, atol=1e-5, rtol=0)
    assert np.isfinite(masked.numpy()).all()

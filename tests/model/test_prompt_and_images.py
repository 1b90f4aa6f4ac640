"""Prompt layout, absent-view masking, tokenizers, and image preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evo1_ros.model import Evo1Config
from evo1_ros.model.processing.images import IMAGENET_MEAN, IMAGENET_STD, preprocess_views
from evo1_ros.model.processing.prompt import PromptTokenizer, build_prompt
from evo1_ros.model.processing.tokenizer import build_byte_level_tokenizer, load_tokenizer


def test_prompt_string():
    cfg = Evo1Config.tiny()
    text = build_prompt("  pick it  ", cfg)
    assert text.startswith("Image-1: <img><IMG_CONTEXT>")
    assert text.count("<IMG_CONTEXT>") == 768
    assert "</img>\nImage-2: <img>" in text and "</img>\nImage-3: <img>" in text
    assert text.endswith("</img>\npick it")


def test_token_layout_matches_the_original(tokenizer, reference_inputs):
    cfg = Evo1Config.tiny()
    ids, attn = PromptTokenizer(tokenizer, cfg).encode(
        ["stack the cans"], torch.tensor([[True, False, True]])
    )
    ids, attn = ids[0], attn[0]
    assert ids.shape == (1024,)
    assert [int(ids[p]) for p in (5, 269, 533)] == [308] * 3
    assert [int(ids[p]) for p in (262, 526, 790)] == [309] * 3
    assert bool((ids[6:262] == 310).all())
    real = int((ids != tokenizer.pad_token_id).sum())
    assert bool((ids[real:] == tokenizer.pad_token_id).all())  # right padding
    masked = torch.nonzero(attn == 0).flatten()
    # exactly view 2's image tokens + the padding are masked; view 2's text tokens stay attended
    assert masked[:256].tolist() == list(range(270, 526))
    assert bool((attn[real:] == 0).all()) and int(attn[269]) == 1 and int(attn[526]) == 1


def test_long_instruction_is_truncated_with_a_warning(tokenizer):
    cfg = Evo1Config.tiny()
    with pytest.warns(UserWarning, match="truncated"):
        ids, _ = PromptTokenizer(tokenizer, cfg).encode(["x" * 400], torch.tensor([[True, True, True]]))
    assert ids.shape == (1, 1024) and int((ids == 310).sum()) == 768


def test_byte_level_tokenizer(tmp_path):
    build_byte_level_tokenizer(tmp_path)
    tok = load_tokenizer(tmp_path)
    cfg = Evo1Config.tiny(img_context_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"))
    ids, attn = PromptTokenizer(tok, cfg).encode(["grasp the cup ü"], torch.tensor([[True, True, True]]))
    assert int((ids == cfg.img_context_token_id).sum()) == 768
    assert int(attn.sum()) == int((ids != tok.pad_token_id).sum())


def test_tokenizer_mismatch_is_a_clear_error(tokenizer, tmp_path):
    with pytest.raises(ValueError, match="img_context_token_id"):
        PromptTokenizer(tokenizer, Evo1Config.tiny(img_context_token_id=5))
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        load_tokenizer(tmp_path)


def test_black_and_resized_views():
    images = [np.full((100, 200, 3), 255, np.uint8), None]
    pixels = preprocess_views(images, [True, False], size=448)
    assert pixels.shape == (2, 3, 448, 448)
    black = (-torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)).view(3, 1, 1)
    torch.testing.assert_close(pixels[1], black.expand(3, 448, 448))
    white = ((1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)).view(3, 1, 1)
    torch.testing.assert_close(pixels[0], white.expand(3, 448, 448))


def test_448_images_are_not_resampled():
    image = np.random.default_rng(0).integers(0, 256, (448, 448, 3), dtype=np.uint8)
    pixels = preprocess_views([image], [True])[0]
    expected = torch.from_numpy(image).permute(2, 0, 1).float() / 255 - torch.tensor(IMAGENET_MEAN).view(
        3, 1, 1
    )
    torch.testing.assert_close(pixels, expected / torch.tensor(IMAGENET_STD).view(3, 1, 1))

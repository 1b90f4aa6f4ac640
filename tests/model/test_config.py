"""Evo1Config: full-size defaults, the tiny preset, JSON round trip and clear errors."""

from __future__ import annotations

import json

import pytest

from evo1_ros.model import Evo1Config


def test_full_size_defaults_are_the_released_model():
    cfg = Evo1Config()
    assert (cfg.vlm_num_layers, cfg.num_views, cfg.horizon, cfg.per_action_dim, cfg.state_dim) == (
        14,
        3,
        50,
        24,
        24,
    )
    assert cfg.action_dim == 1200
    assert cfg.image_tokens_per_view == 256
    assert cfg.projector_in_dim == 4096
    assert cfg.num_inference_steps == 32
    assert cfg.attention_semantics == "flash"
    assert (cfg.embed_dim, cfg.head_hidden_dim, cfg.head_num_heads, cfg.head_num_layers) == (896, 1024, 8, 8)
    assert cfg.max_text_length == 1024


def test_tiny_keeps_the_structure():
    tiny = Evo1Config.tiny()
    full = Evo1Config()
    for name in (
        "image_size",
        "patch_size",
        "num_views",
        "horizon",
        "per_action_dim",
        "state_dim",
        "max_text_length",
    ):
        assert getattr(tiny, name) == getattr(full, name)
    assert tiny.image_tokens_per_view == 256
    assert tiny.embed_dim == tiny.llm_hidden_size == 64


@pytest.mark.parametrize(
    "cfg", [Evo1Config(), Evo1Config.tiny(attention_semantics="masked_head", dtype="bfloat16")]
)
def test_json_round_trip(cfg, tmp_path):
    assert Evo1Config.from_json(cfg.to_json()) == cfg
    cfg.save(tmp_path / "config.json")
    assert Evo1Config.load(tmp_path / "config.json") == cfg


def test_unknown_field_is_rejected():
    data = Evo1Config.tiny().to_dict()
    data["horizn"] = 10
    with pytest.raises(ValueError, match="horizn"):
        Evo1Config.from_dict(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"attention_semantics": "lerobot"}, "attention_semantics"),
        ({"dtype": "float64"}, "dtype"),
        ({"attn_implementation": "flex"}, "attn_implementation"),
        ({"embed_dim": 128}, "embed_dim"),
        ({"head_num_heads": 5}, "embed_dim/head_num_heads"),
        ({"num_categories": 2}, "num_categories"),
        ({"horizon": 0}, "horizon"),
        ({"max_text_length": 100}, "max_text_length"),
        ({"img_context_token_id": 5000}, "img_context_token_id"),
    ],
)
def test_invalid_values_say_what_to_fix(change, message):
    with pytest.raises(ValueError, match=message):
        Evo1Config.tiny(**change)


def test_malformed_json_is_a_clear_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="malformed"):
        Evo1Config.load(path)
    with pytest.raises(FileNotFoundError):
        Evo1Config.load(tmp_path / "absent.json")
    assert json.loads(Evo1Config.tiny().to_json())["vlm_num_layers"] == 2

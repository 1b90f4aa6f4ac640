"""Where a run's weights and tokenizer come from: random, a local InternVL3-1B folder, or a checkpoint.

Only configs are read in `model_config_for` (cheap), so dataset checks can run against the model's
dimensions before any weight is loaded. Nothing is downloaded: every path is local.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from evo1_ros.model import Evo1Config, Evo1Model, build_model, load_official_checkpoint, load_pretrained
from evo1_ros.model.checkpoints.official import config_from_official
from evo1_ros.model.checkpoints.official_keys import official_to_ours
from evo1_ros.model.checkpoints.pretrained import load_state_into
from evo1_ros.model.processing.tokenizer import build_byte_level_tokenizer, find_tokenizer_dir, load_tokenizer

from .config import TrainConfig, TrainConfigError

OFFICIAL_PREFIX = "official:"
BYTE_TOKENIZER_VOCAB = 260
BYTE_TOKENIZER_CONTEXT_ID = 259


@dataclass
class Initial:
    """The model configuration and tokenizer folder of a run (weights come later)."""

    config: Evo1Config
    tokenizer_dir: Path
    kind: str  # random | vlm | project | official
    source: Path | None


def _model_overrides(cfg: TrainConfig) -> dict[str, Any]:
    overrides = {k: v for k, v in cfg.model.items() if k != "preset"}
    known = set(Evo1Config.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TrainConfigError(f"unknown model field(s) {unknown}; see evo1_ros/model/configuration.py")
    return overrides


def _context_id(tokenizer_dir: Path) -> tuple[int, int]:
    tok = load_tokenizer(tokenizer_dir)
    cid = tok.convert_tokens_to_ids("<IMG_CONTEXT>")
    if cid is None or cid == getattr(tok, "unk_token_id", None):
        raise TrainConfigError(
            f"tokenizer {tokenizer_dir} has no <IMG_CONTEXT> token (not an InternVL3 tokenizer)"
        )
    return int(cid), len(tok)


def model_config_for(cfg: TrainConfig, scratch: Path) -> Initial:
    """Resolve init/vlm/tokenizer into a model config; `scratch` receives a generated tokenizer if needed."""
    overrides = _model_overrides(cfg)
    if cfg.init != "random":
        official = cfg.init.startswith(OFFICIAL_PREFIX)
        src = Path(cfg.init[len(OFFICIAL_PREFIX) :] if official else cfg.init).expanduser()
        if not (src / "config.json").is_file():
            raise TrainConfigError(f"init checkpoint not found: {src} (no config.json)")
        data = json.loads((src / "config.json").read_text(encoding="utf-8"))
        try:
            config = config_from_official(data) if official else Evo1Config.from_dict(data)
        except (TypeError, ValueError) as e:
            raise TrainConfigError(f"init checkpoint {src}: {e}") from None
        config = config.replace(device="cpu", dtype="float32")
        tok = find_tokenizer_dir(cfg.tokenizer, src)
        if tok is None:
            raise TrainConfigError(f"no tokenizer in {src}; give tokenizer=DIR (the InternVL3-1B tokenizer)")
        return Initial(config, tok, "official" if official else "project", src)
    base = Evo1Config.tiny if cfg.model.get("preset", "full") == "tiny" else Evo1Config
    if cfg.vlm is not None:
        vlm = Path(cfg.vlm).expanduser()
        if not vlm.is_dir():
            raise TrainConfigError(f"vlm folder not found: {vlm}")
        tok = find_tokenizer_dir(cfg.tokenizer, vlm)
        if tok is None:
            raise TrainConfigError(f"no tokenizer files in {vlm}; is it the InternVL3-1B folder?")
        cid, _ = _context_id(tok)
        return Initial(base(**{"img_context_token_id": cid, **overrides}), tok, "vlm", vlm)
    if cfg.tokenizer is not None:
        tok = find_tokenizer_dir(cfg.tokenizer)
        if tok is None:
            raise TrainConfigError(f"no tokenizer files in {cfg.tokenizer}")
        cid, n = _context_id(tok)
        fields: dict[str, Any] = {"img_context_token_id": cid}
        if cfg.model.get("preset") == "tiny":
            fields["vocab_size"] = n
        return Initial(base(**{**fields, **overrides}), tok, "random", None)
    tok = build_byte_level_tokenizer(scratch / "tokenizer")
    fields = {"img_context_token_id": BYTE_TOKENIZER_CONTEXT_ID}
    if cfg.model.get("preset") == "tiny":
        fields["vocab_size"] = BYTE_TOKENIZER_VOCAB
    try:
        return Initial(base(**{**fields, **overrides}), tok, "random", None)
    except (TypeError, ValueError) as e:
        raise TrainConfigError(f"model: {e}") from None


def _vlm_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise TrainConfigError(f"no *.safetensors weights in {folder}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    return state


def load_vlm_weights(model: Evo1Model, folder: Path) -> int:
    """Copy InternVL3-1B weights (remote-code or `-hf` layout) into the embedder; the head stays random."""
    raw = _vlm_state_dict(folder)
    official: dict[str, torch.Tensor] = {}
    ours: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        key = key[len("model.") :] if key.startswith("model.") else key  # newer -hf files nest under model.
        if key.startswith(("vision_model.", "mlp1.", "language_model.model.")):
            official["embedder.model." + key] = value  # remote-code layout (and the old -hf LLM) → mapper
        elif key.startswith(("vision_tower.", "multi_modal_projector.", "language_model.")):
            ours["embedder.model." + key] = value  # transformers -hf layout = our module names
    mapped, _ = official_to_ours(official, model.config.vlm_num_layers)
    ours.update(mapped)
    expected = {k: v for k, v in model.state_dict().items() if k.startswith("embedder.")}
    ours = {k: v for k, v in ours.items() if k in expected}  # drops lm_head and LLM layers past the cut
    missing = sorted(set(expected) - set(ours))
    if missing:
        raise TrainConfigError(
            f"{folder} lacks {len(missing)} backbone weight(s) (e.g. {missing[:3]}); is it InternVL3-1B?"
        )
    full = dict(model.state_dict())
    full.update(ours)
    load_state_into(model, full, str(folder))
    return len(ours)


def build_initial_model(init: Initial, seed: int) -> Evo1Model:
    """Random weights (seeded), then the VLM or checkpoint weights where the init says so (on CPU, fp32)."""
    if init.kind == "project":
        assert init.source is not None
        return load_pretrained(init.source, device="cpu", dtype="float32").model
    if init.kind == "official":
        assert init.source is not None
        return load_official_checkpoint(init.source, device="cpu", dtype="float32").model
    torch.manual_seed(seed)
    model = build_model(init.config.replace(device="cpu", dtype="float32"), random_init=True)
    if init.kind == "vlm":
        assert init.source is not None
        load_vlm_weights(model, init.source)
    return model

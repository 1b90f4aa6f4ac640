"""Tokenizer loading, plus a minimal byte-level Qwen2 tokenizer for offline tests and benchmarks.

The real InternVL3 tokenizer ships with a checkpoint or the VLM directory. Where none can be downloaded
(CI, benchmarks with random weights) `build_byte_level_tokenizer` writes a byte-level BPE tokenizer with
the three InternVL image tokens; it tokenises any text (one token per UTF-8 byte) and treats the special
tokens like the real one does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("<img>", "</img>", "<IMG_CONTEXT>")
PAD_TOKEN = "<|endoftext|>"
TOKENIZER_FILES = ("tokenizer_config.json", "vocab.json", "merges.txt", "tokenizer.json")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 byte → printable character map used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def build_byte_level_tokenizer(directory: str | Path) -> Path:
    """Write a byte-level Qwen2 tokenizer (ids 0–255 bytes, 256 pad, 257–259 image tokens) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    byte_map = _bytes_to_unicode()
    vocab = {byte_map[b]: b for b in range(256)}
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    added = {PAD_TOKEN: 256, **{tok: 257 + i for i, tok in enumerate(SPECIAL_TOKENS)}}
    token_entry = {
        "lstrip": False,
        "normalized": False,
        "rstrip": False,
        "single_word": False,
        "special": True,
    }
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "added_tokens_decoder": {str(i): {"content": t, **token_entry} for t, i in added.items()},
        "additional_special_tokens": list(SPECIAL_TOKENS),
        "bos_token": None,
        "eos_token": PAD_TOKEN,
        "pad_token": PAD_TOKEN,
        "unk_token": PAD_TOKEN,
        "padding_side": "right",
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "model_max_length": 32768,
        "split_special_tokens": False,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (directory / "added_tokens.json").write_text(json.dumps(added, indent=2), encoding="utf-8")
    return directory


def find_tokenizer_dir(*candidates: str | Path | None) -> Path | None:
    """First candidate directory (or its `tokenizer/` subfolder) that holds tokenizer files."""
    for candidate in candidates:
        if candidate is None:
            continue
        for directory in (Path(candidate), Path(candidate) / "tokenizer"):
            if directory.is_dir() and any((directory / name).is_file() for name in TOKENIZER_FILES):
                return directory
    return None


def load_tokenizer(path: str | Path) -> Any:
    """Load a tokenizer from a checkpoint or VLM directory (its `tokenizer/` subfolder is also tried)."""
    directory = find_tokenizer_dir(path)
    if directory is None:
        raise FileNotFoundError(
            f"no tokenizer files ({', '.join(TOKENIZER_FILES)}) in {path} or {Path(path) / 'tokenizer'}; "
            "copy the InternVL3-1B tokenizer files there or pass tokenizer_path="
        )
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), use_fast=False, trust_remote_code=False)
    except Exception as exc:  # transformers raises many types for broken tokenizer folders
        raise ValueError(f"could not load the tokenizer in {directory}: {exc}") from exc
    if tokenizer.padding_side != "right":
        tokenizer.padding_side = "right"  # Evo-1 prompts are right-padded (§1.3)
    return tokenizer

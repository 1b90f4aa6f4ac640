"""Checkpoints: `pretrained.py` (the project's safetensors format, `save_pretrained` / `load_pretrained`),
`official.py` (official DeepSpeed import / export), `official_keys.py` (the key map between the two) and
`weight_sanity.py` (checks on released weights). docs/evo1_checkpoints.md."""

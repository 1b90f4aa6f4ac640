"""Checkpoints: `pretrained.py` (the project's safetensors format, `save_pretrained` / `load_pretrained`),
`official.py` (official DeepSpeed import / export), `official_keys.py` (the key map between the two),
`weight_sanity.py` (checks on released weights) and `loading.py` (either format ready for inference:
device/dtype, format detection, training fps, `load_policy`). docs/evo1_checkpoints.md."""

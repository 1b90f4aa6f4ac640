"""Inputs and outputs of the network, composed by `Evo1Policy` and saved with the checkpoint: `images.py`
(camera images → pixel values), `prompt.py` and `tokenizer.py` (task text → token ids), `normalization.py`
(`NormStats`, robot units ↔ [−1, 1]). docs/evo1_model.md §3–§4, docs/evo1_checkpoints.md §3."""

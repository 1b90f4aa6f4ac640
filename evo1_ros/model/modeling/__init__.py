"""The Evo-1 network: `evo1.py` (`Evo1Model`), the InternVL3 `backbone.py`, the flow-matching `action_head.py`
and its `head_layers.py`, `flow_matching.py` (the maths), `masked_rows.py` (flash-attention semantics) and
`cuda_graph_sampler.py`. docs/evo1_model.md."""

"""The official Evo-1 websocket protocol (`evo1 serve`) and a small client for it.

`protocol` (request validation, reply encoding) and `client` need no torch; `server` holds the model.
"""

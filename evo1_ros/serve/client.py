"""A small synchronous client for `evo1 serve` (and the official Evo-1 server): numpy in, numpy out.

Example::

    from evo1_ros.serve.client import Evo1Client
    with Evo1Client("ws://127.0.0.1:9000") as client:
        actions = client.infer([bgr_front, bgr_wrist, None], [1, 1, 0], state, "pick up the can",
                               action_mask=[1] * 7 + [0] * 17)   # (50, 24)

Images are sent as they are: in the colour order the server expects (BGR for a default `evo1 serve`
or the official server). ``image_encoding="b64"`` sends raw base64 pixels instead of nested lists
(`evo1 serve` only; much cheaper to encode and decode, see bench/serve_latency.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import numpy as np

from .protocol import DEFAULT_MAX_MESSAGE_BYTES, ServeError, build_request, parse_reply

__all__ = ["Evo1Client", "ServeError"]


class Evo1Client:
    """One websocket connection; requests are answered one at a time, in order."""

    def __init__(
        self,
        url: str = "ws://127.0.0.1:9000",
        timeout: float | None = 120.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        compression: str | None = None,
    ) -> None:
        """timeout: seconds to wait for the connection and for each reply (None = forever)."""
        from websockets.sync.client import connect

        self.url = url
        self.timeout = timeout
        # Entered as a context manager: the form every websockets >= 13 accepts without a warning.
        self._stack = ExitStack()
        self._ws = self._stack.enter_context(
            connect(
                url,
                open_timeout=timeout,
                max_size=max_message_bytes,
                compression=compression,
                ping_interval=None,
                proxy=None,
            )
        )

    def infer(
        self,
        images: Sequence[np.ndarray | None],
        image_mask: Sequence[bool | int],
        state: Sequence[float] | np.ndarray,
        prompt: str,
        action_mask: Sequence[bool | int] | np.ndarray,
        arm_key: str | None = None,
        dataset_key: str | None = None,
        image_encoding: str = "list",
    ) -> np.ndarray:
        """One observation -> [horizon, 24] actions (raises ServeError if the server refuses it)."""
        request = build_request(
            images, image_mask, state, prompt, action_mask, arm_key, dataset_key, image_encoding
        )
        return parse_reply(self.send_raw(json.dumps(request)))

    def request(self, payload: dict[str, Any]) -> Any:
        """Send a request dict as JSON and return the decoded reply (an action list or an error dict)."""
        return json.loads(self.send_raw(json.dumps(payload)))

    def send_raw(self, message: str | bytes) -> str:
        """Send one message exactly as given and return the reply text."""
        self.send(message)
        return self.receive()

    def send(self, message: str | bytes) -> None:
        """Send one message without waiting (pair with `receive`; replies come back in order)."""
        self._ws.send(message)

    def receive(self) -> str:
        """The next reply text (waits up to `timeout` seconds)."""
        reply = self._ws.recv(timeout=self.timeout)
        return reply if isinstance(reply, str) else reply.decode("utf-8")

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Evo1Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

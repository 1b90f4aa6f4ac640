"""The official Evo-1 websocket protocol: request parsing/validation and reply encoding (no torch).

One JSON text message per inference (docs/evo1_checkpoints.md §6), answered by one JSON message:

* request ``{"image": [3 × H×W×3 nested uint8 lists], "image_mask": [3 ints], "state": [≤ 24 floats],
  "action_mask": [24 ints], "prompt": str}``; the `main` server also accepts ``"action_mask": [[…]]``
  and ``"state": [[…]]`` (one row), the `evo1-flash` server adds optional ``"arm_key"`` /
  ``"dataset_key"`` (which norm stats to use);
* reply: a list of ``horizon`` (50) lists × ``per_action_dim`` (24) floats in robot units.

Project extensions (the official server rejects them, the official clients never send them):
an image may be ``{"shape": [H, W, 3], "b64": "<base64 of the raw uint8 bytes>"}`` — 4/3 bytes per
pixel value instead of 2-4 characters plus a comma, and no nested-list decoding — or ``null`` where
``image_mask`` is 0. A request the server cannot serve gets ``{"error": "...", "field": "<name>"}``
instead of the action list, so a client can tell which part of its message to fix. Views whose
``image_mask`` is 0 are not decoded: the model sees a black image there, which is what the official
clients send.

This module knows nothing about the model beyond three sizes (`RequestShape`), so it is testable and
usable (by the client) without torch.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OFFICIAL_PORT = 9000
# The official server's websockets max_size (docs/evo1_checkpoints.md §6): 3 nested-list 448² views are ~7-10 MB.
DEFAULT_MAX_MESSAGE_BYTES = 100_000_000
REQUIRED_FIELDS = ("image", "image_mask", "state", "prompt", "action_mask")


class ProtocolError(ValueError):
    """A request the server cannot serve; ``field`` names the part of the message to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def to_json(self) -> str:
        """The error reply sent instead of the action list."""
        return json.dumps({"error": self.message, "field": self.field})


@dataclass(frozen=True)
class RequestShape:
    """The model sizes a request is checked against (Evo-1: 3 views, 24-D state, 24-D actions)."""

    num_views: int = 3
    state_dim: int = 24
    per_action_dim: int = 24


@dataclass
class InferenceRequest:
    """A validated request, still in the client's units and colour order."""

    images: list[np.ndarray | None]  # H×W×3 uint8 per view; None only where image_mask is False
    image_mask: list[bool]
    state: np.ndarray  # float64, 1..state_dim values as sent (client padding still included)
    prompt: str
    action_mask: np.ndarray  # bool, per_action_dim entries
    arm_key: str | None = None
    dataset_key: str | None = None


# ---------------------------------------------------------------------------------------- parsing
def parse_request(message: str | bytes, shape: RequestShape) -> InferenceRequest:
    """Decode and validate one request message; raises ProtocolError naming the offending field."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        try:
            message = bytes(message).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                "message", f"not UTF-8 text ({exc.reason}); send the request as JSON"
            ) from exc
    try:
        data = json.loads(message)
    except json.JSONDecodeError as exc:
        raise ProtocolError("message", f"not valid JSON ({exc.msg} at char {exc.pos})") from exc
    except RecursionError as exc:
        raise ProtocolError("message", "JSON nested too deeply") from exc
    if not isinstance(data, dict):
        raise ProtocolError("message", f"must be a JSON object with fields {list(REQUIRED_FIELDS)}")
    missing = [f for f in REQUIRED_FIELDS if f not in data]
    if missing:
        raise ProtocolError(missing[0], f"missing required field(s) {missing}")

    image_mask = _parse_mask(data["image_mask"], "image_mask", shape.num_views)
    if not any(image_mask):
        raise ProtocolError("image_mask", "no view is marked present; at least one camera image is needed")
    images = _parse_images(data["image"], image_mask, shape.num_views)
    state = _parse_state(data["state"], shape.state_dim)
    prompt = data["prompt"]
    if not isinstance(prompt, str):
        raise ProtocolError("prompt", f"must be a string (the task instruction), got {_kind(prompt)}")
    action_mask = np.array(_parse_mask(data["action_mask"], "action_mask", shape.per_action_dim), dtype=bool)
    if not action_mask.any():
        raise ProtocolError("action_mask", "selects no action dimension; set 1 on the robot's action dims")
    return InferenceRequest(
        images=images,
        image_mask=image_mask,
        state=state,
        prompt=prompt,
        action_mask=action_mask,
        arm_key=_optional_key(data, "arm_key"),
        dataset_key=_optional_key(data, "dataset_key"),
    )


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _one_row(value: Any) -> Any:
    """``[[…]]`` (one row, as `main` clients may send) → ``[…]``."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        return value[0]
    return value


def _parse_mask(value: Any, field: str, length: int) -> list[bool]:
    row = _one_row(value)
    if not isinstance(row, list):
        raise ProtocolError(field, f"must be a list of {length} ints (0/1), got {_kind(value)}")
    if len(row) != length:
        raise ProtocolError(field, f"must have {length} entries, got {len(row)}")
    out = []
    for i, v in enumerate(row):
        if isinstance(v, bool) or (isinstance(v, (int, float)) and v in (0, 1)):
            out.append(bool(v))
        else:
            raise ProtocolError(field, f"entry {i} must be 0 or 1, got {v!r}")
    return out


def _parse_state(value: Any, max_dim: int) -> np.ndarray:
    row = _one_row(value)
    if not isinstance(row, list) or not row:
        raise ProtocolError("state", f"must be a non-empty list of numbers, got {_kind(value)}")
    if len(row) > max_dim:
        raise ProtocolError("state", f"has {len(row)} values; the model takes at most {max_dim}")
    for i, v in enumerate(row):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ProtocolError("state", f"entry {i} must be a number, got {_kind(v)}")
        if not math.isfinite(v):
            raise ProtocolError("state", f"entry {i} is {v}; refusing to predict from a broken robot state")
    return np.asarray(row, dtype=np.float64)


def _parse_images(value: Any, image_mask: Sequence[bool], num_views: int) -> list[np.ndarray | None]:
    if not isinstance(value, list):
        raise ProtocolError("image", f"must be a list of {num_views} images, got {_kind(value)}")
    if len(value) != num_views:
        raise ProtocolError(
            "image", f"must hold exactly {num_views} images (pad with zero images), got {len(value)}"
        )
    return [_parse_image(v, f"image[{i}]", image_mask[i]) for i, v in enumerate(value)]


def _parse_image(value: Any, field: str, present: bool) -> np.ndarray | None:
    if not present:
        # The model sees a black image for an absent view whatever was sent (official clients send
        # zeros), so it is not decoded: that saves a third of the decode time per absent 448² view.
        if value is not None and not isinstance(value, (list, dict)):
            raise ProtocolError(field, f"must be an image, or null for an absent view, got {_kind(value)}")
        return None
    if value is None:
        raise ProtocolError(field, "is null but image_mask marks this view present")
    if isinstance(value, dict):
        return _decode_b64_image(value, field)
    if not isinstance(value, list):
        raise ProtocolError(field, f"must be an H×W×3 nested list of uint8, got {_kind(value)}")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged rows, mixed types
        raise ProtocolError(
            field, f"is not a rectangular H×W×3 array ({str(exc).splitlines()[0][:120]})"
        ) from exc
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ProtocolError(field, f"must have shape H×W×3 (3 colour channels), got {array.shape}")
    if array.dtype.kind not in "iu":
        raise ProtocolError(field, f"values must be integers 0..255 (uint8), got {array.dtype.name} values")
    lo, hi = int(array.min()), int(array.max())
    if lo < 0 or hi > 255:
        raise ProtocolError(field, f"values must lie in 0..255 (uint8), got {lo}..{hi}")
    return array.astype(np.uint8)


def _decode_b64_image(value: dict[str, Any], field: str) -> np.ndarray:
    shape, data = value.get("shape"), value.get("b64")
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
        or shape[2] != 3
    ):
        raise ProtocolError(field, f'"shape" must be [H, W, 3] with positive ints, got {shape!r}')
    if not isinstance(data, str):
        raise ProtocolError(field, '"b64" must be a base64 string of the raw uint8 pixel bytes')
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(field, f'"b64" is not valid base64 ({exc})') from exc
    expected = shape[0] * shape[1] * shape[2]
    if len(raw) != expected:
        raise ProtocolError(field, f'"b64" holds {len(raw)} bytes; shape {shape} needs {expected}')
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape).copy()  # writable, as torch wants


def _optional_key(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ProtocolError(field, f"must be a non-empty string or absent, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------- encoding
def encode_actions(chunk: np.ndarray) -> str:
    """[horizon, per_action_dim] actions → the official reply (a JSON list of lists of floats)."""
    return json.dumps(np.asarray(chunk, dtype=np.float64).tolist())


def encode_image(image: np.ndarray, encoding: str = "list") -> Any:
    """One H×W×3 uint8 view as the request carries it: ``"list"`` (official) or ``"b64"`` (extension)."""
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"an image must be an H×W×3 uint8 array, got {array.dtype} {array.shape}")
    if encoding == "list":
        return array.tolist()
    if encoding == "b64":
        raw = np.ascontiguousarray(array).tobytes()
        return {"shape": list(array.shape), "b64": base64.b64encode(raw).decode("ascii")}
    raise ValueError(f"image encoding must be 'list' or 'b64', got {encoding!r}")


def build_request(
    images: Sequence[np.ndarray | None],
    image_mask: Sequence[bool | int],
    state: Sequence[float] | np.ndarray,
    prompt: str,
    action_mask: Sequence[bool | int] | np.ndarray,
    arm_key: str | None = None,
    dataset_key: str | None = None,
    image_encoding: str = "list",
) -> dict[str, Any]:
    """A request dict in the official layout (``json.dumps`` it to send).

    A ``None`` view is sent as ``null`` (project extension); the official servers need a zero image there.
    """
    data: dict[str, Any] = {
        "image": [None if im is None else encode_image(im, image_encoding) for im in images],
        "image_mask": [int(bool(m)) for m in image_mask],
        "state": np.asarray(state, dtype=np.float64).reshape(-1).tolist(),
        "prompt": prompt,
        "action_mask": [int(bool(m)) for m in np.asarray(action_mask).reshape(-1)],
    }
    if arm_key is not None:
        data["arm_key"] = arm_key
    if dataset_key is not None:
        data["dataset_key"] = dataset_key
    return data


def parse_reply(message: str | bytes) -> np.ndarray:
    """A server reply → [horizon, per_action_dim] float array; an error reply raises ServeError."""
    data = json.loads(message)
    if isinstance(data, dict) and "error" in data:
        raise ServeError(str(data.get("field", "?")), str(data["error"]))
    array = np.asarray(data, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected a list of action lists, got an array of shape {array.shape}")
    return array


class ServeError(RuntimeError):
    """The server answered with an error reply (``field`` is what to fix in the request)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"server refused the request: {field}: {message}")
        self.field = field
        self.message = message

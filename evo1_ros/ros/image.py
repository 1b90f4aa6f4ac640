"""``sensor_msgs/Image`` <-> numpy without cv_bridge.

ROS 2's ``cv_bridge`` is not on PyPI (docs/ros2_from_pypi.md §3), so the project converts images with
numpy alone. This module is the implementation everywhere, also where ``cv_bridge`` happens to be
installed, so behaviour does not depend on the machine.

What it guarantees:

* every message is checked before its buffer is read (encoding known, positive size, ``step`` large
  enough and aligned, ``len(data) == step * height``); anything else raises :class:`ImageConversionError`
  naming the problem, because a silently mis-shaped camera frame would reach the policy;
* row padding (``step`` larger than a packed row) is stripped;
* multi-byte pixels are returned in native byte order whatever ``is_bigendian`` says;
* returned arrays are C-contiguous and own their memory, so a later message (or a reused message
  buffer) can never change an array that was already handed out.
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import Image

from evo1_ros.ros.stamps import nanoseconds_to_stamp

__all__ = [
    "ENCODINGS",
    "EncodingInfo",
    "ImageConversionError",
    "encoding_info",
    "image_to_numpy",
    "numpy_to_image",
    "to_rgb8",
]


class ImageConversionError(ValueError):
    """An image message or array is inconsistent with its encoding, or the encoding is unsupported."""


@dataclass(frozen=True)
class EncodingInfo:
    """Layout of one ROS image encoding: numpy element type and channel count."""

    name: str
    dtype: np.dtype  # native-order element type
    channels: int

    @property
    def itemsize(self) -> int:
        """Bytes per channel element."""
        return self.dtype.itemsize

    @property
    def pixel_bytes(self) -> int:
        """Bytes per pixel (all channels)."""
        return self.dtype.itemsize * self.channels


def _info(name: str, dtype: type, channels: int) -> EncodingInfo:
    return EncodingInfo(name, np.dtype(dtype), channels)


ENCODINGS: dict[str, EncodingInfo] = {
    e.name: e
    for e in (
        _info("rgb8", np.uint8, 3),
        _info("bgr8", np.uint8, 3),
        _info("rgba8", np.uint8, 4),
        _info("bgra8", np.uint8, 4),
        _info("mono8", np.uint8, 1),
        _info("mono16", np.uint16, 1),
        _info("16UC1", np.uint16, 1),
        _info("32FC1", np.float32, 1),
    )
}

# Channel index arrays that turn each colour encoding into RGB order.
_TO_RGB: dict[str, tuple[int, ...]] = {
    "rgb8": (0, 1, 2),
    "bgr8": (2, 1, 0),
    "rgba8": (0, 1, 2),
    "bgra8": (2, 1, 0),
    "mono8": (0, 0, 0),
}

_NATIVE_BIG = sys.byteorder == "big"


def encoding_info(encoding: str) -> EncodingInfo:
    """Layout of ``encoding``; raises :class:`ImageConversionError` for anything not supported."""
    try:
        return ENCODINGS[encoding]
    except (KeyError, TypeError):
        supported = ", ".join(ENCODINGS)
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r} (supported: {supported})"
        ) from None


def _as_byte_view(data: Any) -> np.ndarray:
    """1-D uint8 view of a message's ``data`` (array.array, bytes, numpy array or a plain sequence)."""
    if isinstance(data, np.ndarray):  # duck-typed messages (e.g. rosbags) carry numpy arrays
        return np.asarray(data, dtype=np.uint8).reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):
        # Plain Python sequences (e.g. a list in a hand-made message) have no buffer.
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_to_numpy(msg: Image) -> np.ndarray:
    """Decode ``msg`` into an owned array: ``H x W`` for one channel, ``H x W x C`` otherwise.

    Multi-byte values come back in native byte order; row padding is removed.
    """
    info = encoding_info(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(
            f"image size must be positive, got height={height} width={width} ({msg.encoding})"
        )
    row_bytes = width * info.pixel_bytes
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width*bytes_per_pixel = {width}*{info.pixel_bytes} = {row_bytes}"
            f" for {msg.encoding}"
        )
    if step % info.itemsize != 0:
        raise ImageConversionError(
            f"step {step} is not a multiple of the {info.itemsize}-byte element size of {msg.encoding}"
        )
    raw = _as_byte_view(msg.data)
    expected = step * height
    if raw.size != expected:
        what = "short" if raw.size < expected else "long"
        raise ImageConversionError(
            f"image data too {what}: len(data)={raw.size} but step*height = {step}*{height} = {expected}"
        )

    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    # Copy into a fresh array (also when rows are unpadded) so the result never aliases the message.
    out = np.empty(shape, dtype=info.dtype)
    out.view(np.uint8).reshape(height, row_bytes)[...] = raw.reshape(height, step)[:, :row_bytes]
    if info.itemsize > 1 and bool(msg.is_bigendian) != _NATIVE_BIG:
        out.byteswap(inplace=True)  # wire order -> native order
    return out


def _stamp_to_msg(stamp: Any) -> Any:
    """Accept a ``builtin_interfaces/Time``, an ``rclpy.time.Time`` or integer nanoseconds."""
    from builtin_interfaces.msg import Time as TimeMsg

    if stamp is None:
        return TimeMsg()
    if isinstance(stamp, TimeMsg):
        return TimeMsg(sec=stamp.sec, nanosec=stamp.nanosec)
    if hasattr(stamp, "to_msg"):
        return stamp.to_msg()
    if isinstance(stamp, (int, np.integer)) and not isinstance(stamp, bool):
        ns = int(stamp)
        if ns < 0:
            raise ImageConversionError(f"stamp must be non-negative nanoseconds, got {ns}")
        return nanoseconds_to_stamp(ns)
    raise ImageConversionError(
        f"stamp must be builtin_interfaces/Time, rclpy Time or int nanoseconds, got {type(stamp).__name__}"
    )


def numpy_to_image(
    arr: np.ndarray,
    encoding: str,
    stamp: Any = None,
    frame_id: str = "",
    *,
    is_bigendian: bool | None = None,
) -> Image:
    """Build a packed ``sensor_msgs/Image`` (``step = width * bytes_per_pixel``) from ``arr``.

    ``arr`` must have the encoding's element type (any byte order) and shape ``H x W x C``; one-channel
    encodings also take ``H x W``. The data is written in native byte order unless ``is_bigendian``
    asks for a specific one (useful to talk to, or test against, a big-endian producer).
    """
    info = encoding_info(encoding)
    if not isinstance(arr, np.ndarray):
        raise ImageConversionError(f"expected a numpy array, got {type(arr).__name__}")
    if arr.dtype.kind != info.dtype.kind or arr.dtype.itemsize != info.itemsize:
        raise ImageConversionError(
            f"{encoding} needs dtype {info.dtype.name}, got array of dtype {arr.dtype}"
        )
    if info.channels == 1 and arr.ndim == 2:
        height, width = arr.shape
    elif arr.ndim == 3 and arr.shape[2] == info.channels:
        height, width = arr.shape[:2]
    else:
        want = "(H, W) or (H, W, 1)" if info.channels == 1 else f"(H, W, {info.channels})"
        raise ImageConversionError(f"{encoding} needs an array of shape {want}, got shape {arr.shape}")
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"image size must be positive, got shape {arr.shape}")

    big = _NATIVE_BIG if is_bigendian is None else bool(is_bigendian)
    wire_dtype = info.dtype.newbyteorder(">" if big else "<") if info.itemsize > 1 else info.dtype
    payload = np.ascontiguousarray(arr, dtype=wire_dtype).tobytes()

    msg = Image()
    msg.header.stamp = _stamp_to_msg(stamp)
    msg.header.frame_id = frame_id
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = 1 if big else 0
    msg.step = width * info.pixel_bytes
    # array.array('B', bytes) is a memcpy; assigning bytes directly makes rclpy check every element.
    msg.data = array.array("B", payload)
    return msg


def to_rgb8(msg: Image) -> np.ndarray:
    """Decode a colour or mono8 image into an owned ``H x W x 3`` uint8 RGB array.

    The policy and the recorder work in RGB; depth / 16-bit / float encodings have no meaningful RGB
    view and are rejected rather than rescaled behind the caller's back.
    """
    info = encoding_info(msg.encoding)
    order = _TO_RGB.get(info.name)
    if order is None:
        raise ImageConversionError(
            f"cannot convert {info.name} ({info.dtype.name}, depth/16-bit/float data) to rgb8; "
            "use image_to_numpy for depth images"
        )
    arr = image_to_numpy(msg)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if order == (0, 1, 2) and arr.shape[2] == 3:
        return arr  # already an owned contiguous copy
    out = np.empty((*arr.shape[:2], 3), dtype=np.uint8)
    for dst, src in enumerate(order):
        out[:, :, dst] = arr[:, :, src]
    return out

"""Image <-> numpy conversion: round trips, padding, byte order, and every rejection path."""

from __future__ import annotations

import array

import numpy as np
import pytest
from builtin_interfaces.msg import Time as TimeMsg
from sensor_msgs.msg import Image

from evo1_ros.ros.image import (
    ENCODINGS,
    ImageConversionError,
    image_to_numpy,
    numpy_to_image,
    to_rgb8,
)

# (encoding, dtype, channels) written out here, independently of the module's table.
LAYOUTS = [
    ("rgb8", np.uint8, 3),
    ("bgr8", np.uint8, 3),
    ("rgba8", np.uint8, 4),
    ("bgra8", np.uint8, 4),
    ("mono8", np.uint8, 1),
    ("mono16", np.uint16, 1),
    ("16UC1", np.uint16, 1),
    ("32FC1", np.float32, 1),
]


def _random_array(rng: np.random.Generator, dtype: type, h: int, w: int, c: int) -> np.ndarray:
    shape = (h, w) if c == 1 else (h, w, c)
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def _manual_message(
    arr: np.ndarray, encoding: str, pad: int, big: bool, h: int | None = None, w: int | None = None
) -> Image:
    """Build a message by hand (no module code): rows padded with ``pad`` junk bytes, given byte order."""
    h = arr.shape[0] if h is None else h
    w = arr.shape[1] if w is None else w
    wire = arr.astype(arr.dtype.newbyteorder(">" if big else "<"))
    rows = wire.reshape(arr.shape[0], -1).view(np.uint8).reshape(arr.shape[0], -1)
    junk = np.full((arr.shape[0], pad), 0xAB, dtype=np.uint8)
    payload = np.concatenate([rows, junk], axis=1).tobytes()
    msg = Image()
    msg.height, msg.width, msg.encoding = h, w, encoding
    msg.is_bigendian = int(big)
    msg.step = rows.shape[1] + pad
    msg.data = array.array("B", payload)
    return msg


def test_table_matches_supported_encodings() -> None:
    assert set(ENCODINGS) == {name for name, _, _ in LAYOUTS}


@pytest.mark.parametrize(("encoding", "dtype", "channels"), LAYOUTS)
def test_round_trip_every_encoding_random_sizes(encoding: str, dtype: type, channels: int) -> None:
    rng = np.random.default_rng([ord(ch) for ch in encoding])
    for _ in range(5):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        arr = _random_array(rng, dtype, h, w, channels)
        msg = numpy_to_image(arr, encoding, stamp=TimeMsg(sec=7, nanosec=9), frame_id="cam")
        assert (msg.height, msg.width, msg.encoding) == (h, w, encoding)
        assert msg.step == w * channels * np.dtype(dtype).itemsize
        assert len(msg.data) == msg.step * h
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (7, 9, "cam")
        back = image_to_numpy(msg)
        assert back.dtype == np.dtype(dtype) and back.dtype.isnative
        assert back.shape == arr.shape
        np.testing.assert_array_equal(back, arr)
        assert back.flags["C_CONTIGUOUS"] and back.flags["OWNDATA"]


@pytest.mark.parametrize(("encoding", "dtype", "channels"), LAYOUTS)
@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("pad", [0, 4, 12])  # aligned for every element size; 8-bit odd pads below
def test_decode_padded_rows_and_both_byte_orders(
    encoding: str, dtype: type, channels: int, big: bool, pad: int
) -> None:
    rng = np.random.default_rng(pad * 31 + big)
    arr = _random_array(rng, dtype, 5, 7, channels)
    msg = _manual_message(arr, encoding, pad, big)
    back = image_to_numpy(msg)
    np.testing.assert_array_equal(back, arr)
    assert back.dtype.isnative and back.flags["OWNDATA"] and back.flags["C_CONTIGUOUS"]


def test_big_endian_bytes_are_interpreted_big_endian() -> None:
    # 0x0102 big-endian is 258; little-endian would be 513.
    msg = Image(height=1, width=2, encoding="16UC1", is_bigendian=1, step=4)
    msg.data = array.array("B", [0x01, 0x02, 0x00, 0xFF])
    np.testing.assert_array_equal(image_to_numpy(msg), [[258, 255]])
    msg.is_bigendian = 0
    np.testing.assert_array_equal(image_to_numpy(msg), [[513, 0xFF00]])
    # 32FC1: 1.0f is 3F 80 00 00 big-endian.
    f = Image(height=1, width=1, encoding="32FC1", is_bigendian=1, step=4)
    f.data = array.array("B", [0x3F, 0x80, 0x00, 0x00])
    assert image_to_numpy(f)[0, 0] == np.float32(1.0)


@pytest.mark.parametrize("big", [False, True])
def test_encode_in_requested_byte_order(big: bool) -> None:
    arr = np.array([[1, 2, 0xABCD]], dtype=np.uint16)
    msg = numpy_to_image(arr, "mono16", is_bigendian=big)
    assert msg.is_bigendian == int(big)
    expected = arr.astype(">u2" if big else "<u2").tobytes()
    assert bytes(msg.data) == expected
    np.testing.assert_array_equal(image_to_numpy(msg), arr)
    # A non-native input array is accepted and converted by value.
    swapped = arr.astype(arr.dtype.newbyteorder())
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(swapped, "16UC1", is_bigendian=big)), arr)


def test_result_does_not_alias_message_buffer() -> None:
    arr = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    msg = numpy_to_image(arr, "rgb8")
    back = image_to_numpy(msg)
    rgb = to_rgb8(msg)
    msg.data[0] = 200  # a later write into the message buffer must not show up in earlier results
    assert back[0, 0, 0] == 0 and rgb[0, 0, 0] == 0
    arr[0, 0, 0] = 99  # nor must the input array alias the message
    assert msg.data[0] == 200


def test_single_channel_accepts_trailing_axis_and_numpy_data() -> None:
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    msg = numpy_to_image(arr, "mono8")
    np.testing.assert_array_equal(image_to_numpy(msg), arr[:, :, 0])
    # Duck-typed messages (e.g. from rosbags) carry numpy data and bytes; both decode the same.
    duck = Image(height=2, width=3, encoding="mono8", step=3)
    object.__setattr__(duck, "_data", np.arange(6, dtype=np.uint8))
    np.testing.assert_array_equal(image_to_numpy(duck), arr[:, :, 0])


def test_stamp_forms() -> None:
    arr = np.zeros((1, 1), np.uint8)
    assert numpy_to_image(arr, "mono8").header.stamp == TimeMsg()
    ns = numpy_to_image(arr, "mono8", stamp=3_000_000_007).header.stamp
    assert (ns.sec, ns.nanosec) == (3, 7)
    from rclpy.time import Time

    rt = numpy_to_image(arr, "mono8", stamp=Time(nanoseconds=5_000_000_001)).header.stamp
    assert (rt.sec, rt.nanosec) == (5, 1)
    with pytest.raises(ImageConversionError, match="non-negative"):
        numpy_to_image(arr, "mono8", stamp=-1)
    with pytest.raises(ImageConversionError, match="stamp must be"):
        numpy_to_image(arr, "mono8", stamp=1.5)


@pytest.mark.parametrize(
    ("encoding", "pixel", "rgb"),
    [
        ("rgb8", [10, 20, 30], [10, 20, 30]),
        ("bgr8", [10, 20, 30], [30, 20, 10]),
        ("rgba8", [10, 20, 30, 40], [10, 20, 30]),
        ("bgra8", [10, 20, 30, 40], [30, 20, 10]),
        ("mono8", 77, [77, 77, 77]),
    ],
)
def test_to_rgb8(encoding: str, pixel: object, rgb: list[int]) -> None:
    shape = (3, 4) if encoding == "mono8" else (3, 4, len(pixel))  # type: ignore[arg-type]
    arr = np.empty(shape, np.uint8)
    arr[...] = pixel
    arr[2, 3] = 0  # one different pixel so a transposition would show
    out = to_rgb8(_manual_message(arr, encoding, pad=3, big=False))
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"] and out.flags["OWNDATA"]
    np.testing.assert_array_equal(out[0, 0], rgb)
    np.testing.assert_array_equal(out[2, 3], [0, 0, 0])


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1"])
def test_to_rgb8_rejects_depth(encoding: str) -> None:
    arr = np.zeros((2, 2), np.float32 if encoding == "32FC1" else np.uint16)
    with pytest.raises(ImageConversionError, match=f"cannot convert {encoding} .* to rgb8"):
        to_rgb8(numpy_to_image(arr, encoding))


def _valid(encoding: str = "rgb8", h: int = 2, w: int = 3) -> Image:
    info = {name: (dt, c) for name, dt, c in LAYOUTS}[encoding]
    return numpy_to_image(np.zeros((h, w, info[1]) if info[1] > 1 else (h, w), info[0]), encoding)


def test_rejects_unknown_encoding() -> None:
    msg = _valid()
    msg.encoding = "yuv422"
    with pytest.raises(ImageConversionError, match=r"unsupported image encoding 'yuv422'"):
        image_to_numpy(msg)
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'RGB8'"):
        numpy_to_image(np.zeros((1, 1, 3), np.uint8), "RGB8")
    assert issubclass(ImageConversionError, ValueError)


@pytest.mark.parametrize(("h", "w"), [(0, 3), (2, 0), (0, 0)])
def test_rejects_zero_dims(h: int, w: int) -> None:
    msg = _valid()
    msg.height, msg.width = h, w
    with pytest.raises(ImageConversionError, match="image size must be positive"):
        image_to_numpy(msg)


def test_rejects_negative_dims_on_duck_typed_message() -> None:
    class Duck:
        height, width, step, encoding, is_bigendian, data = -2, 3, 9, "rgb8", 0, b""

    with pytest.raises(ImageConversionError, match="image size must be positive"):
        image_to_numpy(Duck())  # type: ignore[arg-type]


def test_rejects_step_too_small() -> None:
    msg = _valid("rgb8", 2, 3)
    msg.step = 8  # needs 9
    with pytest.raises(ImageConversionError, match=r"step 8 is smaller than .* = 3\*3 = 9"):
        image_to_numpy(msg)
    m16 = _valid("mono16", 2, 3)
    m16.step = 4  # needs 6
    with pytest.raises(ImageConversionError, match=r"step 4 is smaller than .* = 6"):
        image_to_numpy(m16)


@pytest.mark.parametrize(("encoding", "step"), [("16UC1", 7), ("mono16", 9), ("32FC1", 14)])
def test_rejects_unaligned_step(encoding: str, step: int) -> None:
    msg = _valid(encoding, 2, 3)
    msg.step = step
    msg.data = array.array("B", bytes(step * 2))
    with pytest.raises(ImageConversionError, match=f"step {step} is not a multiple of the .*-byte element"):
        image_to_numpy(msg)


def test_unaligned_padding_is_fine_for_8bit() -> None:
    arr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(image_to_numpy(_manual_message(arr, "rgb8", 3, False)), arr)


@pytest.mark.parametrize("delta", [-1, 1, -18, 5])
def test_rejects_data_length_mismatch(delta: int) -> None:
    msg = _valid("rgb8", 2, 3)
    msg.data = array.array("B", bytes(18 + delta))
    what = "short" if delta < 0 else "long"
    with pytest.raises(
        ImageConversionError, match=rf"image data too {what}: len\(data\)={18 + delta} .* = 18"
    ):
        image_to_numpy(msg)


def test_rejects_padded_step_without_padded_data() -> None:
    msg = _valid("rgb8", 2, 3)
    msg.step = 12  # claims padding but data is packed (18 bytes, needs 24)
    with pytest.raises(ImageConversionError, match="too short"):
        image_to_numpy(msg)


@pytest.mark.parametrize(
    ("arr", "encoding", "match"),
    [
        (np.zeros((2, 3, 3), np.uint16), "rgb8", "rgb8 needs dtype uint8, got array of dtype uint16"),
        (np.zeros((2, 3), np.int16), "16UC1", "16UC1 needs dtype uint16, got array of dtype int16"),
        (np.zeros((2, 3), np.float64), "32FC1", "32FC1 needs dtype float32, got array of dtype float64"),
        (np.zeros((2, 3), np.uint8), "mono16", "mono16 needs dtype uint16"),
        (np.zeros((2, 3), np.uint8), "rgb8", r"rgb8 needs an array of shape \(H, W, 3\), got shape \(2, 3\)"),
        (np.zeros((2, 3, 3), np.uint8), "rgba8", r"rgba8 needs an array of shape \(H, W, 4\)"),
        (np.zeros((2, 3, 2), np.uint8), "mono8", r"mono8 needs an array of shape \(H, W\) or \(H, W, 1\)"),
        (np.zeros((6,), np.uint8), "mono8", r"got shape \(6,\)"),
        (np.zeros((0, 3, 3), np.uint8), "bgr8", "image size must be positive"),
        (np.zeros((2, 0), np.float32), "32FC1", "image size must be positive"),
    ],
)
def test_numpy_to_image_rejects_mismatched_arrays(arr: np.ndarray, encoding: str, match: str) -> None:
    with pytest.raises(ImageConversionError, match=match):
        numpy_to_image(arr, encoding)


def test_numpy_to_image_rejects_non_arrays() -> None:
    with pytest.raises(ImageConversionError, match="expected a numpy array, got list"):
        numpy_to_image([[1, 2]], "mono8")  # type: ignore[arg-type]


def test_non_contiguous_input_is_packed() -> None:
    base = np.arange(5 * 8 * 3, dtype=np.uint8).reshape(5, 8, 3)
    view = base[::2, 1::3]  # strided view
    msg = numpy_to_image(view, "bgr8")
    assert msg.step == view.shape[1] * 3 and len(msg.data) == msg.step * msg.height
    np.testing.assert_array_equal(image_to_numpy(msg), view)

"""Request parsing without a server or model: both official variants, the b64 extension, replies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evo1_ros.serve.protocol import (
    ProtocolError,
    RequestShape,
    ServeError,
    build_request,
    encode_actions,
    encode_image,
    parse_reply,
    parse_request,
)

SHAPE = RequestShape()
IMAGE = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)


def _request(**changes) -> dict:
    data = {
        "image": [
            IMAGE.tolist(),
            np.zeros((2, 3, 3), np.uint8).tolist(),
            np.zeros((2, 3, 3), np.uint8).tolist(),
        ],
        "image_mask": [1, 0, 0],
        "state": [1.0, 2.0, 3.0],
        "action_mask": [1] * 3 + [0] * 21,
        "prompt": "open the drawer",
    }
    data.update(changes)
    return data


def test_main_and_flash_variants_parse_to_the_same_request() -> None:
    flat = parse_request(json.dumps(_request()), SHAPE)
    main = parse_request(
        json.dumps(_request(state=[[1.0, 2.0, 3.0]], action_mask=[[1] * 3 + [0] * 21])), SHAPE
    )
    flash = parse_request(json.dumps(_request(arm_key="metaworld_robot", dataset_key="mt50")), SHAPE)
    for req in (flat, main, flash):
        np.testing.assert_array_equal(req.images[0], IMAGE)
        assert req.images[0].dtype == np.uint8
        assert req.images[1] is None and req.images[2] is None  # absent views are not decoded
        assert req.image_mask == [True, False, False]
        np.testing.assert_array_equal(req.state, [1.0, 2.0, 3.0])
        assert req.action_mask.tolist() == [True] * 3 + [False] * 21
        assert req.prompt == "open the drawer"
    assert (flat.arm_key, flat.dataset_key) == (None, None)
    assert (flash.arm_key, flash.dataset_key) == ("metaworld_robot", "mt50")


def test_b64_image_round_trip_and_null_absent_views() -> None:
    data = build_request([IMAGE, None, None], [1, 0, 0], [0.5], "x", [1] + [0] * 23, image_encoding="b64")
    assert data["image"][0] == encode_image(IMAGE, "b64") and data["image"][1] is None
    req = parse_request(json.dumps(data).encode("utf-8"), SHAPE)
    np.testing.assert_array_equal(req.images[0], IMAGE)
    assert req.images[0].flags.writeable


def test_absent_view_content_is_not_decoded_but_must_look_like_an_image() -> None:
    req = parse_request(json.dumps(_request(image=[IMAGE.tolist(), [[1, 2]], None])), SHAPE)
    assert req.images[1] is None
    with pytest.raises(ProtocolError) as info:
        parse_request(json.dumps(_request(image=[IMAGE.tolist(), 0, None])), SHAPE)
    assert info.value.field == "image[1]"


def test_error_reply_and_action_reply_round_trip() -> None:
    error = ProtocolError("state", "entry 2 is nan")
    assert json.loads(error.to_json()) == {"error": "entry 2 is nan", "field": "state"}
    with pytest.raises(ServeError) as info:
        parse_reply(error.to_json())
    assert info.value.field == "state"
    chunk = np.random.default_rng(0).normal(size=(50, 24)).astype(np.float32)
    np.testing.assert_array_equal(parse_reply(encode_actions(chunk)).astype(np.float32), chunk)


def test_encode_image_refuses_non_uint8() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_image(IMAGE.astype(np.float32))
    with pytest.raises(ValueError, match="'list' or 'b64'"):
        encode_image(IMAGE, "png")

"""`evo1 serve` over a real websocket: official request shapes, answers equal to a direct predict, errors.

The server runs on a background thread of this process (ServerThread) with the real websockets stack;
the subprocess/CLI path is in test_serve_cli.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed

from evo1_ros.serve.client import Evo1Client, ServeError
from evo1_ros.serve.protocol import build_request
from evo1_ros.serve.server import LoadedServer, PolicyService, ServerThread

from .conftest import SEED, expected_actions, expected_for_payload, images

TASK = "pick up the red can and put it in the white box"
XARM_STATE = [4.3, 15.5, -9.4, 182.6, 100.4, 0.3, 612.0]  # official client's init pose (deg) + gripper pulses


def _close(actual: Any, expected: np.ndarray) -> None:
    """Same numbers up to float32 rounding (the reply carries float32 values as JSON floats)."""
    array = np.asarray(actual, dtype=np.float64)
    assert array.shape == (50, 24)
    np.testing.assert_allclose(array, expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------- official client shapes
# Each builder returns the request dict exactly as that client puts it together (docs/evo1_checkpoints.md §7).
def xarm6_request() -> dict[str, Any]:
    base, wrist = images(1, [(448, 448), (448, 448)])  # OpenCV frames -> RGB, resized to 448 by the client
    return {
        "image": [base.tolist(), wrist.tolist(), np.zeros((448, 448, 3), np.uint8).tolist()],
        "image_mask": [1, 1, 0],
        "state": XARM_STATE + [0.0] * 17,  # zero-padded to 24 on the client
        "action_mask": [[1] * 7 + [0] * 17],  # nested: only the main server accepts it
        "prompt": TASK,
    }


def metaworld_request() -> dict[str, Any]:
    (img,) = images(2, [(448, 448)])  # corner2, rotated, cropped, resized to 448, RGB -> BGR
    zero = np.zeros((448, 448, 3), np.uint8).tolist()
    return {
        "image": [img.tolist(), zero, zero],
        "image_mask": [1, 0, 0],
        "state": np.linspace(-0.5, 0.5, 8).tolist(),  # first 8 obs dims
        "action_mask": [1] * 4 + [0] * 20,
        "prompt": "pick-place: pick up the puck and place it at the goal",
    }


def libero_request() -> dict[str, Any]:
    agent, wrist = images(3, [(448, 448), (448, 448)])  # rendered at 448, flipped 180 degrees, RGB
    return {
        "image": [
            agent[::-1, ::-1].tolist(),
            wrist[::-1, ::-1].tolist(),
            np.zeros((448, 448, 3), np.uint8).tolist(),
        ],
        "state": [0.1, -0.2, 1.0, 3.0, 0.1, -0.1, 0.04, -0.04],  # eef pos + axis-angle + gripper qpos
        "prompt": "put the bowl on the plate",
        "image_mask": [1, 1, 0],
        "action_mask": [1] * 7 + [0] * 17,
    }


def robotwin_request() -> dict[str, Any]:
    head, left, right = images(4, [(240, 320), (240, 320), (240, 320)])  # camera size; the server resizes
    return {
        "image": [head.tolist(), left.tolist(), right.tolist()],  # RGB -> BGR on the client
        "state": np.linspace(-1.0, 1.0, 14).tolist(),  # 14-D joint state, not padded
        "prompt": "beat the block with the hammer",
        "image_mask": [1, 1, 1],
        "action_mask": [1] * 14 + [0] * 10,
        "dataset_key": "robotwin_beat_block_hammer",  # evo1-flash per-request norm keys
        "arm_key": "aloha_joint",
    }


def aloha_request() -> dict[str, Any]:
    views = images(5, [(240, 320), (240, 320), (240, 320)])  # camera size; the server resizes
    return {
        "image": [v.tolist() for v in views],
        "image_mask": [1, 1, 1],
        "state": np.linspace(-0.7, 0.7, 14).tolist() + [0.0] * 10,  # padded to 24 on the client
        "action_mask": [1] * 14 + [0] * 10,
        "prompt": "hand over the block",
    }


# (builder, server default arm/dataset, the arm/dataset whose stats the answer must use)
CLIENTS: dict[
    str, tuple[Callable[[], dict[str, Any]], tuple[str | None, str | None], tuple[str, str | None]]
] = {
    "metaworld": (metaworld_request, ("metaworld_robot", None), ("metaworld_robot", None)),
    "libero": (libero_request, ("libero_robot", None), ("libero_robot", None)),
    "robotwin": (robotwin_request, (None, None), ("aloha_joint", "robotwin_beat_block_hammer")),
    "aloha": (
        aloha_request,
        ("aloha_joint", "robotwin_adjust_bottle"),
        ("aloha_joint", "robotwin_adjust_bottle"),
    ),
    # xarm6: test_official_json_answer_equals_direct_predict (on the single-arm official layout)
}


@pytest.mark.parametrize("client", list(CLIENTS))
def test_official_client_request_shapes_are_served(client: str, multi_arm_loaded: LoadedServer) -> None:
    build, (arm, dataset), (want_arm, want_dataset) = CLIENTS[client]
    payload = build()
    service = PolicyService(
        multi_arm_loaded.policy, multi_arm_loaded.norm_stats_data, arm_key=arm, dataset_key=dataset, seed=SEED
    )
    with ServerThread(service) as server, Evo1Client(server.url) as c:
        reply = c.request(payload)
    assert isinstance(reply, list), reply
    _close(reply, expected_for_payload(multi_arm_loaded, payload, arm_key=want_arm, dataset_key=want_dataset))


def test_official_json_answer_equals_direct_predict(reference_server: ServerThread, reference_loaded) -> None:
    """xArm6 client over the official checkpoint layout: (50, 24), real dims = predict, padding dims = 0."""
    payload = xarm6_request()
    with Evo1Client(reference_server.url) as c:
        reply = np.asarray(c.request(payload))
    _close(reply, expected_for_payload(reference_loaded, payload))
    assert np.all(reply[:, 7:] == 0.0)
    timing = reference_server.service.last_timing
    assert timing is not None and timing.error_field is None and timing.model_ms > 0


def test_client_infer_and_b64_images_give_the_same_answer(
    reference_server: ServerThread, reference_loaded
) -> None:
    views = [*images(8, [(300, 400), (448, 448)]), None]
    state = XARM_STATE
    amask = [1] * 7 + [0] * 17
    with Evo1Client(reference_server.url) as c:
        as_lists = c.infer([*views[:2], np.zeros((448, 448, 3), np.uint8)], [1, 1, 0], state, TASK, amask)
        as_b64 = c.infer(views, [1, 1, 0], state, TASK, amask, image_encoding="b64")
    expected = expected_actions(reference_loaded, views, [1, 1, 0], state, TASK, amask)
    _close(as_lists, expected)
    np.testing.assert_array_equal(as_lists, as_b64)


def test_client_color_switch(reference_loaded: LoadedServer) -> None:
    """--client-color rgb feeds the pixels as sent; bgr (default) swaps them first, as the official server."""
    views = images(9, [(448, 448)])
    args = ([*views, None, None], [1, 0, 0], XARM_STATE, TASK, [1] * 7 + [0] * 17)
    answers = {}
    for color in ("bgr", "rgb"):
        service = PolicyService(
            reference_loaded.policy, reference_loaded.norm_stats_data, client_color=color, seed=SEED
        )
        with ServerThread(service) as server, Evo1Client(server.url) as c:
            answers[color] = c.infer(*args, image_encoding="b64")
        _close(answers[color], expected_actions(reference_loaded, *args, client_color=color))
    assert not np.allclose(answers["bgr"], answers["rgb"])


def test_two_connections_are_both_served(reference_server: ServerThread, reference_loaded) -> None:
    a, b = images(10, [(448, 448), (448, 448)])
    amask = [1] * 7 + [0] * 17
    with Evo1Client(reference_server.url) as c1, Evo1Client(reference_server.url) as c2:
        c1.send(
            json.dumps(
                build_request([a, None, None], [1, 0, 0], XARM_STATE, TASK, amask, image_encoding="b64")
            )
        )
        c2.send(
            json.dumps(
                build_request([b, None, None], [1, 0, 0], XARM_STATE, TASK, amask, image_encoding="b64")
            )
        )
        r2 = json.loads(c2.receive())
        r1 = json.loads(c1.receive())
    _close(r1, expected_actions(reference_loaded, [a, None, None], [1, 0, 0], XARM_STATE, TASK, amask))
    _close(r2, expected_actions(reference_loaded, [b, None, None], [1, 0, 0], XARM_STATE, TASK, amask))


# ---------------------------------------------------------------------------- malformed requests
def _good() -> dict[str, Any]:
    view = images(11, [(448, 448)])[0]
    return build_request(
        [view, None, None], [1, 0, 0], XARM_STATE, TASK, [1] * 7 + [0] * 17, image_encoding="b64"
    )


def _with(**changes: Any) -> Callable[[], str]:
    def make() -> str:
        payload = _good()
        for key, value in changes.items():
            if value is _DROP:
                del payload[key]
            else:
                payload[key] = value
        return json.dumps(payload)

    return make


def _image(index: int, value: Any) -> Callable[[], str]:
    def make() -> str:
        payload = _good()
        payload["image"][index] = value
        return json.dumps(payload)

    return make


_DROP = object()
_SMALL = np.zeros((4, 4, 3), np.uint8).tolist()
MALFORMED: dict[str, tuple[Callable[[], str], str, str]] = {
    # name: (message, field the error must name, text the error must contain)
    "not_json": (lambda: '{"image": [', "message", "not valid JSON"),
    "not_utf8": (lambda: b"\xff\xfe{}", "message", "UTF-8"),  # type: ignore[return-value,arg-type]
    "json_list": (lambda: "[1, 2, 3]", "message", "JSON object"),
    "missing_prompt": (_with(prompt=_DROP), "prompt", "missing"),
    "two_images": (_with(image=[_SMALL, _SMALL]), "image", "exactly 3"),
    "four_images": (_with(image=[_SMALL] * 4), "image", "exactly 3"),
    "image_not_a_list": (_with(image="abc"), "image", "list of 3"),
    "ragged_image": (_image(0, [[[1, 2, 3]], [[1, 2]]]), "image[0]", "rectangular"),
    "image_over_255": (_image(0, [[[1, 2, 300]]]), "image[0]", "0..255"),
    "image_negative": (_image(0, [[[1, 2, -1]]]), "image[0]", "0..255"),
    "image_floats": (_image(0, [[[0.5, 0.5, 0.5]]]), "image[0]", "integers"),
    "image_two_channels": (_image(0, [[[1, 2]]]), "image[0]", "H×W×3"),
    "present_view_null": (_with(image_mask=[1, 1, 0]), "image[1]", "null"),
    "bad_b64": (_image(0, {"shape": [448, 448, 3], "b64": "!!"}), "image[0]", "base64"),
    "b64_wrong_size": (_image(0, {"shape": [2, 2, 3], "b64": "AAAA"}), "image[0]", "needs 12"),
    "image_mask_length": (_with(image_mask=[1, 0]), "image_mask", "3 entries"),
    "image_mask_empty": (_with(image_mask=[0, 0, 0]), "image_mask", "at least one"),
    "image_mask_value": (_with(image_mask=[2, 0, 0]), "image_mask", "0 or 1"),
    "state_nan": (lambda: _with()().replace('"state": [4.3', '"state": [NaN'), "state", "nan"),
    "state_inf": (lambda: _with()().replace('"state": [4.3', '"state": [Infinity'), "state", "inf"),
    "state_string": (_with(state=["1"] * 7), "state", "number"),
    "state_too_long": (_with(state=[0.0] * 25), "state", "at most 24"),
    "state_too_short": (_with(state=[0.0] * 6), "state", "describe 7"),
    "state_bad_padding": (_with(state=XARM_STATE + [1.0] + [0.0] * 16), "state", "must be 0"),
    "action_mask_length": (_with(action_mask=[1] * 7 + [0] * 16), "action_mask", "24 entries"),
    "action_mask_none": (_with(action_mask=[0] * 24), "action_mask", "no action"),
    "action_mask_value": (_with(action_mask=[2] + [0] * 23), "action_mask", "0 or 1"),
    "prompt_not_text": (_with(prompt=5), "prompt", "string"),
    "unknown_arm": (_with(arm_key="franka"), "arm_key", "franka"),
    "arm_key_not_text": (_with(arm_key=3), "arm_key", "string"),
}


@pytest.fixture(scope="module")
def malformed_session(reference_loaded: LoadedServer) -> Iterator[tuple[Evo1Client, np.ndarray]]:
    """One server and ONE connection for all malformed cases: the connection must survive each of them."""
    service = PolicyService(reference_loaded.policy, reference_loaded.norm_stats_data, seed=SEED)
    view = images(11, [(448, 448)])[0]
    expected = expected_actions(
        reference_loaded, [view, None, None], [1, 0, 0], XARM_STATE, TASK, [1] * 7 + [0] * 17
    )
    with ServerThread(service) as server, Evo1Client(server.url) as c:
        yield c, expected


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_request_gets_its_error_and_the_next_is_served(case: str, malformed_session) -> None:
    client, expected = malformed_session
    make, field, text = MALFORMED[case]
    reply = json.loads(client.send_raw(make()))
    assert isinstance(reply, dict) and set(reply) == {"error", "field"}, reply
    assert reply["field"] == field, reply
    assert text.lower() in reply["error"].lower(), reply
    _close(client.request(_good()), expected)


def test_infer_raises_serve_error_naming_the_field(malformed_session) -> None:
    client, _ = malformed_session
    with pytest.raises(ServeError) as info:
        client.infer([np.zeros((8, 8, 3), np.uint8)] * 3, [1, 1, 1], [float("nan")] * 7, TASK, [1] * 24)
    assert info.value.field == "state"


def test_oversized_requests(reference_loaded: LoadedServer) -> None:
    """Over the limit: a JSON error and the connection lives; over twice the limit: that connection closes
    (1009), and the server still serves new ones."""
    limit = 2_000_000
    views = images(12, [(448, 448)] * 3)  # one b64 view is ~0.8 MB
    amask = [1] * 7 + [0] * 17
    service = PolicyService(reference_loaded.policy, reference_loaded.norm_stats_data, seed=SEED)
    good = build_request([*views[:2], None], [1, 1, 0], XARM_STATE, TASK, amask, image_encoding="b64")
    big = build_request(views, [1, 1, 1], XARM_STATE, TASK, amask, image_encoding="b64")
    expected = expected_actions(reference_loaded, [*views[:2], None], [1, 1, 0], XARM_STATE, TASK, amask)
    with ServerThread(service, max_message_bytes=limit) as server:
        with Evo1Client(server.url, max_message_bytes=10 * limit) as c:
            reply = c.request(big)
            assert reply["field"] == "message" and "--max-message-bytes" in reply["error"], reply
            _close(c.request(good), expected)
            with pytest.raises(ConnectionClosed) as info:
                c.send_raw("x" * (2 * limit + 10))
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        with Evo1Client(server.url) as c:
            _close(c.request(good), expected)


def test_norm_stats_selection_errors_name_the_key(multi_arm_loaded: LoadedServer) -> None:
    """Several arms and no default: a request must name arm_key (and dataset_key where an arm has several)."""
    service = PolicyService(multi_arm_loaded.policy, multi_arm_loaded.norm_stats_data, seed=SEED)
    view = images(13, [(448, 448)])[0]
    state = np.linspace(-1.0, 1.0, 14).tolist()
    amask = [1] * 14 + [0] * 10

    def request(**keys: str) -> dict[str, Any]:
        return build_request([view, None, None], [1, 0, 0], state, TASK, amask, image_encoding="b64", **keys)

    with ServerThread(service) as server, Evo1Client(server.url) as c:
        no_arm = c.request(request())
        no_dataset = c.request(request(arm_key="aloha_joint"))
        bad_dataset = c.request(request(arm_key="aloha_joint", dataset_key="robotwin_unknown"))
        good = c.request(request(arm_key="aloha_joint", dataset_key="robotwin_adjust_bottle"))
    assert no_arm["field"] == "arm_key" and "several arms" in no_arm["error"], no_arm
    assert no_dataset["field"] == "dataset_key" and "robotwin_beat_block_hammer" in no_dataset["error"], (
        no_dataset
    )
    assert bad_dataset["field"] == "dataset_key" and "robotwin_unknown" in bad_dataset["error"], bad_dataset
    expected = expected_actions(
        multi_arm_loaded,
        [view, None, None],
        [1, 0, 0],
        state,
        TASK,
        amask,
        arm_key="aloha_joint",
        dataset_key="robotwin_adjust_bottle",
    )
    _close(good, expected)

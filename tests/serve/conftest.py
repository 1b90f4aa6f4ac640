"""Fixtures for `evo1 serve`: the official-format tiny checkpoint, a multi-arm copy of it, servers, requests.

Request payloads are built here as data, the way the official clients build them (docs/evo1_checkpoints.md
§7); nothing of the official code is imported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from evo1_ros.model import Evo1Policy, NormStats
from evo1_ros.serve.server import LoadedServer, PolicyService, ServerThread, load_policy
from fixtures.models import REFERENCE_DIR

SEED = 7


def _bounds(dim: int, lo: float, hi: float) -> dict[str, list[float]]:
    return {"min": [lo] * dim, "max": [hi] * dim}


def _block(state_dim: int, action_dim: int, scale: float) -> dict[str, Any]:
    return {
        "observation.state": _bounds(state_dim, -scale, scale),
        "action": _bounds(action_dim, -scale, scale),
    }


# Norm stats in the evo1-flash layout (arm -> dataset -> stats) next to old-layout arms, with the native
# dims of each benchmark: MetaWorld 8-D state / 4-D action, LIBERO 8 / 7, RoboTwin (aloha) 14 / 14,
# xArm6 7 / 7 (degrees + gripper pulses, the fixture's own stats).
def multi_arm_stats() -> dict[str, Any]:
    reference = json.loads((REFERENCE_DIR / "norm_stats.json").read_text())
    return {
        "metaworld_robot": {"metaworld_mt50": _block(8, 4, 1.0)},
        "libero_robot": _block(8, 7, 2.0),
        "aloha_joint": {
            "robotwin_beat_block_hammer": _block(14, 14, 3.0),
            "robotwin_adjust_bottle": _block(14, 14, 1.5),
        },
        "xarm6": reference["xarm6"],
    }


@pytest.fixture(scope="session")
def reference_loaded() -> LoadedServer:
    """tests/data/evo1_reference_A (official DeepSpeed layout) loaded the way `evo1 serve` loads it."""
    return load_policy(REFERENCE_DIR)


@pytest.fixture(scope="session")
def multi_arm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference checkpoint with a several-arm / several-dataset norm_stats.json (evo1-flash style)."""
    directory = tmp_path_factory.mktemp("multi_arm")
    for name in ("config.json", "mp_rank_00_model_states.pt", "tokenizer"):
        os.symlink(REFERENCE_DIR / name, directory / name)
    (directory / "norm_stats.json").write_text(json.dumps(multi_arm_stats()))
    return directory


@pytest.fixture(scope="session")
def multi_arm_loaded(multi_arm_dir: Path) -> LoadedServer:
    return load_policy(multi_arm_dir)


@pytest.fixture
def reference_server(reference_loaded: LoadedServer) -> Iterator[ServerThread]:
    service = PolicyService(reference_loaded.policy, reference_loaded.norm_stats_data, seed=SEED)
    with ServerThread(service) as server:
        yield server


def images(seed: int, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in shapes]


def expected_actions(
    loaded: LoadedServer,
    views: list[Any],
    image_mask: list[int],
    state: list[float],
    prompt: str,
    action_mask: list[int] | list[list[int]],
    arm_key: str | None = None,
    dataset_key: str | None = None,
    client_color: str = "bgr",
) -> np.ndarray:
    """What the server must answer: a direct Evo1Policy.predict on the same inputs, same seed.

    Spec of the official server (docs/evo1_checkpoints.md §6): each view cv2-resized (bilinear) to 448, BGR -> RGB;
    raw state normalised with the chosen arm/dataset's stats (client zero padding dropped); 50 x 24 out
    (dims past the stats' action dims are 0).
    """
    stats = NormStats.from_dict(loaded.norm_stats_data, arm_key, dataset_key)
    policy = Evo1Policy(loaded.policy.model, loaded.policy.tokenizer, stats)
    size = policy.config.image_size
    rgb: list[np.ndarray | None] = []
    mask = [bool(m) for m in image_mask]
    for view, present in zip(views, mask, strict=True):
        if not present:
            rgb.append(None)
            continue
        array = np.asarray(view, dtype=np.uint8)
        if array.shape[:2] != (size, size):
            array = cv2.resize(array, (size, size), interpolation=cv2.INTER_LINEAR)
        rgb.append(np.ascontiguousarray(array[..., ::-1] if client_color == "bgr" else array))
    raw_state = np.asarray(state, dtype=np.float64).reshape(-1)[: stats.state_dim]
    amask = np.asarray(action_mask).reshape(-1).astype(bool)
    actions = policy.predict(rgb, mask, raw_state, prompt, action_mask=amask, generator=SEED)
    out = np.zeros((actions.shape[0], 24), dtype=np.float32)
    out[:, : actions.shape[1]] = actions
    return out


def expected_for_payload(loaded: LoadedServer, payload: dict[str, Any], **kwargs: Any) -> np.ndarray:
    """expected_actions for an official-format (nested-list) request dict."""
    return expected_actions(
        loaded,
        payload["image"],
        np.asarray(payload["image_mask"]).reshape(-1).tolist(),
        payload["state"],
        payload["prompt"],
        payload["action_mask"],
        **kwargs,
    )

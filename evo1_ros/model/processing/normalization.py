"""Min/max ("bounds") normalisation of state and actions to [−1, 1], and `norm_stats.json` I/O.

x_n = clamp(2·(x − min)/(max − min + 1e-8) − 1, −1, 1), padded with zeros to 24 dims *after*
normalising (training semantics); inverse a → (a + 1)/2·(max − min + 1e-8) + min on the real dims.
Both `norm_stats.json` layouts are read: old `{arm: {"observation.state": …, "action": …}}` and new
`{arm: {dataset: {…}}}` (docs/evo1_checkpoints.md §3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EPS = 1e-8
STATE_KEY = "observation.state"
ACTION_KEY = "action"


def _vector(block: Any, key: str, where: str) -> np.ndarray:
    if not isinstance(block, dict) or key not in block:
        raise ValueError(f"norm stats {where} has no {key!r} entry")
    values = np.asarray(block[key], dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"norm stats {where}.{key} must be a non-empty list of finite numbers")
    return values


@dataclass
class NormStats:
    """Per-dimension bounds of the robot's state and action vectors (native dimensions, no padding)."""

    state_min: np.ndarray
    state_max: np.ndarray
    action_min: np.ndarray
    action_max: np.ndarray

    def __post_init__(self) -> None:
        for lo, hi, name in (
            (self.state_min, self.state_max, "state"),
            (self.action_min, self.action_max, "action"),
        ):
            if lo.shape != hi.shape:
                raise ValueError(f"{name} min {lo.shape} and max {hi.shape} differ in length")
            if np.any(hi < lo):
                bad = np.nonzero(hi < lo)[0].tolist()
                raise ValueError(f"{name} max < min at dims {bad}; the stats are swapped or corrupt")

    @property
    def state_dim(self) -> int:
        return int(self.state_min.shape[0])

    @property
    def action_dim(self) -> int:
        return int(self.action_min.shape[0])

    # ------------------------------------------------------------------ math
    @staticmethod
    def _normalize(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, pad_to: int, name: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != lo.shape[0]:
            raise ValueError(f"{name} has {x.shape[-1]} dims but the norm stats have {lo.shape[0]}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or inf")
        if pad_to < lo.shape[0]:
            raise ValueError(f"{name} has {lo.shape[0]} dims, more than the model's {pad_to}")
        n = np.clip(2.0 * (x - lo) / (hi - lo + EPS) - 1.0, -1.0, 1.0)
        pad = [(0, 0)] * (n.ndim - 1) + [(0, pad_to - lo.shape[0])]
        return np.pad(n, pad).astype(np.float32)

    def normalize_state(self, state: np.ndarray, pad_to: int = 24) -> np.ndarray:
        """[..., state_dim] robot units → [..., pad_to] in [−1, 1], padded dims 0."""
        return self._normalize(state, self.state_min, self.state_max, pad_to, "state")

    def normalize_action(self, action: np.ndarray, pad_to: int = 24) -> np.ndarray:
        """[..., action_dim] robot units → [..., pad_to] in [−1, 1], padded dims 0 (training targets)."""
        return self._normalize(action, self.action_min, self.action_max, pad_to, "action")

    def denormalize_action(self, action: np.ndarray) -> np.ndarray:
        """[..., ≥ action_dim] normalised → [..., action_dim] robot units (extra padded dims dropped)."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape[-1] < self.action_dim:
            raise ValueError(f"action has {a.shape[-1]} dims, fewer than the stats' {self.action_dim}")
        a = a[..., : self.action_dim]
        return ((a + 1.0) / 2.0 * (self.action_max - self.action_min + EPS) + self.action_min).astype(
            np.float32
        )

    def action_mask(self, per_action_dim: int = 24) -> np.ndarray:
        """True on the real action dims, False on padding."""
        if per_action_dim < self.action_dim:
            raise ValueError(
                f"stats have {self.action_dim} action dims, more than the model's {per_action_dim}"
            )
        mask = np.zeros(per_action_dim, dtype=bool)
        mask[: self.action_dim] = True
        return mask

    # ------------------------------------------------------------------ JSON
    @classmethod
    def from_dict(
        cls, data: dict[str, Any], arm_key: str | None = None, dataset_key: str | None = None
    ) -> NormStats:
        """Parse either norm_stats.json layout; the arm (and dataset) must be named when there are several."""
        if not isinstance(data, dict) or not data:
            raise ValueError("norm stats must be a non-empty JSON object keyed by arm name")
        if STATE_KEY in data and ACTION_KEY in data:
            block, where = data, "<root>"  # bare block (no arm level), as we write per arm
        else:
            arm = _pick(data, arm_key, "arm", "arm_key")
            block, where = data[arm], arm
            if not (isinstance(block, dict) and STATE_KEY in block and ACTION_KEY in block):
                if not isinstance(block, dict):
                    raise ValueError(f"norm stats entry {arm!r} must be an object")
                dataset = _pick(block, dataset_key, f"dataset of arm {arm!r}", "dataset_key")
                block, where = block[dataset], f"{arm}.{dataset}"
        state = block.get(STATE_KEY) if isinstance(block, dict) else None
        action = block.get(ACTION_KEY) if isinstance(block, dict) else None
        if state is None or action is None:
            raise ValueError(f"norm stats {where} needs both {STATE_KEY!r} and {ACTION_KEY!r}")
        return cls(
            state_min=_vector(state, "min", f"{where}.{STATE_KEY}"),
            state_max=_vector(state, "max", f"{where}.{STATE_KEY}"),
            action_min=_vector(action, "min", f"{where}.{ACTION_KEY}"),
            action_max=_vector(action, "max", f"{where}.{ACTION_KEY}"),
        )

    @classmethod
    def load(cls, path: str | Path, arm_key: str | None = None, dataset_key: str | None = None) -> NormStats:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"norm stats file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, arm_key, dataset_key)

    def to_dict(self, arm_key: str = "robot") -> dict[str, Any]:
        """Old (`main`) single-arm layout, which both the original server and we read."""
        return {
            arm_key: {
                STATE_KEY: {"min": self.state_min.tolist(), "max": self.state_max.tolist()},
                ACTION_KEY: {"min": self.action_min.tolist(), "max": self.action_max.tolist()},
            }
        }

    def save(self, path: str | Path, arm_key: str = "robot") -> None:
        Path(path).write_text(json.dumps(self.to_dict(arm_key), indent=2) + "\n", encoding="utf-8")


def _pick(options: dict[str, Any], wanted: str | None, what: str, argument: str) -> str:
    if wanted is not None:
        if wanted not in options:
            raise ValueError(f"norm stats have no {what} {wanted!r}; available: {sorted(options)}")
        return wanted
    if len(options) != 1:
        raise ValueError(f"norm stats hold several {what}s {sorted(options)}; choose one with {argument}=")
    return next(iter(options))

"""Evo-1 inference off the control thread: checkpoint loading for a deployment, and a one-slot worker.

The policy node must never block its executor on a forward pass (hundreds of ms on a CPU), so it hands
the newest observation to :class:`InferenceWorker`, whose thread runs ``Evo1Policy.predict`` and calls
back with the chunk. The slot holds one request: a newer observation replaces one not yet started
(LeRobot's async server does the same with its size-1 queue), because a chunk computed from an old
observation is worth less than one from the newest.

No ROS here (layer rule): the node supplies the clock and the callbacks.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError
from .policy import Evo1Policy

OFFICIAL_WEIGHTS = "mp_rank_00_model_states.pt"
PROJECT_WEIGHTS = "model.safetensors"
TRAINING_META = "training.json"  # written beside a project checkpoint by the trainer: {"fps": 30, ...}
FORMATS = ("auto", "project", "official")


def resolve_device(text: str) -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> a torch device string that exists on this machine."""
    value = text.strip().lower()
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value == "cpu":
        return "cpu"
    if value == "cuda" or value.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {text!r}: no CUDA device is available here (use device:=cpu or auto)")
        if ":" in value:
            index = value.split(":", 1)[1]
            if not index.isdigit() or int(index) >= torch.cuda.device_count():
                raise ValueError(
                    f"device {text!r}: this machine has {torch.cuda.device_count()} CUDA device(s), 0-based"
                )
        return value
    raise ValueError(f"device {text!r} must be auto, cpu, cuda or cuda:N")


def resolve_dtype(text: str, device: str) -> str:
    """``auto`` = bfloat16 on a GPU (what Evo-1 runs in), float32 on the CPU; else the name given."""
    value = text.strip().lower()
    if value == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if value not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"dtype {text!r} must be auto, float32, bfloat16 or float16")
    return value


def checkpoint_format(directory: str | Path, fmt: str = "auto") -> str:
    """``project`` or ``official`` for a checkpoint folder; a missing folder or weights file raises."""
    path = Path(directory).expanduser()
    if fmt not in FORMATS:
        raise ValueError(f"checkpoint format {fmt!r} must be one of {list(FORMATS)}")
    if not str(directory).strip():
        raise CheckpointError("no checkpoint given: set the checkpoint parameter (checkpoint:=DIR)")
    if not path.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {path}")
    if fmt != "auto":
        return fmt
    if (path / PROJECT_WEIGHTS).is_file():
        return "project"
    if (path / OFFICIAL_WEIGHTS).is_file():
        return "official"
    raise CheckpointError(
        f"{path} holds neither {PROJECT_WEIGHTS} (project checkpoint) nor {OFFICIAL_WEIGHTS} (official Evo-1)"
    )


def checkpoint_fps(directory: str | Path) -> float | None:
    """The frame rate the checkpoint was trained at (``training.json`` ``fps``), or None if not recorded."""
    meta = Path(directory).expanduser() / TRAINING_META
    if not meta.is_file():
        return None
    try:
        fps = json.loads(meta.read_text(encoding="utf-8")).get("fps")
    except (json.JSONDecodeError, AttributeError) as exc:
        raise CheckpointError(f"{meta} is not a JSON object with an 'fps' entry: {exc}") from None
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise CheckpointError(f"{meta}: fps must be a positive number, got {fps!r}")
    return float(fps)


def load_policy(
    directory: str | Path,
    *,
    fmt: str = "auto",
    tokenizer_dir: str | Path | None = None,
    device: str = "auto",
    dtype: str = "auto",
) -> Evo1Policy:
    """Load a checkpoint of either format for inference; anything wrong is one CheckpointError line."""
    kind = checkpoint_format(directory, fmt)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    path = Path(directory).expanduser()
    tok = Path(tokenizer_dir).expanduser() if tokenizer_dir else None
    try:
        if kind == "project":
            return Evo1Policy.from_pretrained(path, tokenizer_path=tok, device=dev, dtype=dt)
        return Evo1Policy.from_official(path, tokenizer_path=tok, device=dev, dtype=dt)
    except CheckpointError:
        raise
    except Exception as exc:  # torch/safetensors/json/tokenizer failures all mean "this folder is unusable"
        text = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"cannot load {kind} checkpoint {path}: {type(exc).__name__}: {text}") from exc


@dataclass
class InferenceRequest:
    """One observation to run: images per view (None = masked), mask, state in model units, task."""

    images: list[np.ndarray | None]
    image_mask: list[bool]
    state: np.ndarray
    task: str
    obs_stamp: float  # observation time on the caller's clock (s)
    request_id: int = 0
    submitted: float = field(default_factory=time.monotonic)


@dataclass
class InferenceResult:
    """A chunk ``(horizon, action_dim)`` in model units and how long it took."""

    actions: np.ndarray
    request: InferenceRequest
    compute_time: float  # s spent in predict
    finished: float  # caller's clock when the chunk was ready (s)


class InferenceWorker:
    """A thread that runs the newest submitted request; results and errors go to callbacks.

    ``on_result(result)`` and ``on_error(request, exc)`` run on the worker thread. ``clock()`` returns
    the caller's time in seconds (the ROS clock in the node), used to stamp ``finished``.
    """

    def __init__(
        self,
        policy: Evo1Policy,
        on_result: Callable[[InferenceResult], None],
        on_error: Callable[[InferenceRequest, BaseException], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        num_steps: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.policy = policy
        self._on_result = on_result
        self._on_error = on_error
        self._clock = clock
        self.num_steps = num_steps
        self.seed = seed
        self._generator: torch.Generator | None = None
        self.reseed()
        self._cond = threading.Condition()
        self._pending: InferenceRequest | None = None
        self._busy = False
        self._stopped = False
        self.replaced = 0  # requests overwritten before they started
        self._thread = threading.Thread(target=self._run, name="evo1-inference", daemon=True)

    def reseed(self) -> None:
        """Restart the noise sequence from ``seed`` (after a warm-up, so chunk 1 is repeatable)."""
        self._generator = None
        if self.seed is not None and self.seed >= 0:
            self._generator = torch.Generator(device="cpu")
            self._generator.manual_seed(int(self.seed))

    def start(self) -> InferenceWorker:
        self._thread.start()
        return self

    @property
    def busy(self) -> bool:
        """True while a request is pending or running."""
        with self._cond:
            return self._busy or self._pending is not None

    def submit(self, request: InferenceRequest) -> bool:
        """Queue ``request``; returns False when it replaced a pending one that had not started."""
        with self._cond:
            replaced = self._pending is not None
            if replaced:
                self.replaced += 1
            self._pending = request
            self._cond.notify()
        return not replaced

    def cancel(self) -> bool:
        """Forget a pending request; True if one was pending (a running one still finishes and calls back)."""
        with self._cond:
            had = self._pending is not None
            self._pending = None
            return had

    def predict(self, request: InferenceRequest) -> np.ndarray:
        """Run one request synchronously (warm-up, benchmarks); NaN/inf output raises FloatingPointError."""
        actions = self.policy.predict(
            request.images,
            request.image_mask,
            request.state,
            request.task,
            num_steps=self.num_steps,
            generator=self._generator,
        )
        if not np.all(np.isfinite(actions)):
            raise FloatingPointError("the model returned NaN/inf actions")
        return np.asarray(actions, dtype=np.float64)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                request, self._pending = self._pending, None
                self._busy = True
            try:
                t0 = time.perf_counter()
                actions = self.predict(request)
                result = InferenceResult(actions, request, time.perf_counter() - t0, self._clock())
            except Exception as exc:  # the model failing must reach the node as a fault, not kill the thread
                with self._cond:
                    self._busy = False
                self._on_error(request, exc)
                continue
            with self._cond:
                self._busy = False
            self._on_result(result)

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (after the running prediction, if any)."""
        with self._cond:
            self._stopped = True
            self._pending = None
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)


def model_info(policy: Evo1Policy) -> dict[str, Any]:
    """What the node reports about the loaded model."""
    cfg = policy.config
    return {
        "horizon": cfg.horizon,
        "state_dim": policy.norm_stats.state_dim,
        "action_dim": policy.norm_stats.action_dim,
        "num_views": cfg.num_views,
        "device": str(policy.device),
        "dtype": str(policy.model.action_head.dtype).replace("torch.", ""),
    }

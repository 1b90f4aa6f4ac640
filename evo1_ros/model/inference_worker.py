"""Evo-1 inference off the control thread: a one-slot worker.

Loading the checkpoint it runs is evo1_ros/model/checkpoints/loading.py.

The policy node must never block its executor on a forward pass (hundreds of ms on a CPU), so it hands
the newest observation to :class:`InferenceWorker`, whose thread runs ``Evo1Policy.predict`` and calls
back with the chunk. The slot holds one request: a newer observation replaces one not yet started
(LeRobot's async server does the same with its size-1 queue), because a chunk computed from an old
observation is worth less than one from the newest.

No ROS here (layer rule): the node supplies the clock and the callbacks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .policy import Evo1Policy


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

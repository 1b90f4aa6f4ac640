"""`evo1 serve`: the official Evo-1 websocket server, backed by one `Evo1Policy`.

Drop-in for ``Evo_1/scripts/Evo1_server.py`` (both the `main` and the `evo1-flash` request variants,
docs/evo1_checkpoints.md §6–§7): the official MetaWorld, LIBERO, RoboTwin and xArm6 clients work unchanged.
Differences that make it safe to leave running:

* binds loopback unless told otherwise; never unpickles anything (project checkpoints are safetensors,
  official ones are read with ``torch.load(weights_only=True)``);
* a bad request gets ``{"error", "field"}`` and the connection stays open for the next one;
* requests from all connections go through ONE worker thread, in arrival order, so one model instance
  serves them one at a time and the event loop stays free for new connections and for shutdown;
* per-request timing (decode / model / encode) is logged; SIGINT/SIGTERM finish the request in flight,
  close the connections (1001 "going away") and exit 0.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from evo1_ros.model import CheckpointError, Evo1Policy, NormStats
from evo1_ros.model.checkpoints import loading
from evo1_ros.model.checkpoints.pretrained import NORM_STATS_NAME
from evo1_ros.model.processing.normalization import ACTION_KEY, STATE_KEY

from .protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    InferenceRequest,
    ProtocolError,
    RequestShape,
    encode_actions,
    parse_request,
)

log = logging.getLogger("evo1_ros.serve")

CLIENT_COLORS = ("bgr", "rgb")
COMPRESSIONS = ("none", "deflate")


@dataclass
class RequestTiming:
    """Where one request's time went (milliseconds); ``error_field`` is set for refused requests."""

    decode_ms: float = 0.0  # JSON parse + validation + nested lists -> arrays
    model_ms: float = 0.0  # resize/colour order + Evo1Policy.predict
    encode_ms: float = 0.0  # padding to per_action_dim + JSON dump
    error_field: str | None = None

    @property
    def total_ms(self) -> float:
        return self.decode_ms + self.model_ms + self.encode_ms

    def summary(self) -> str:
        return (
            f"decode {self.decode_ms:.1f} ms, model {self.model_ms:.1f} ms, encode {self.encode_ms:.1f} ms, "
            f"total {self.total_ms:.1f} ms"
        )


class PolicyService:
    """Official request in, official reply out, for one model instance. Not thread-safe: call from one thread.

    norm_stats_data: the checkpoint's raw norm_stats.json, so requests may pick other arms / datasets
    (``arm_key`` / ``dataset_key``, evo1-flash); arm_key / dataset_key: the defaults for requests that
    name none. client_color: the channel order clients send ("bgr" like the official server assumes).
    seed: seed of every request's noise (same request -> same answer); None draws from torch's global RNG.
    """

    def __init__(
        self,
        policy: Evo1Policy,
        norm_stats_data: dict[str, Any] | None = None,
        arm_key: str | None = None,
        dataset_key: str | None = None,
        client_color: str = "bgr",
        seed: int | None = None,
        num_steps: int | None = None,
    ) -> None:
        if client_color not in CLIENT_COLORS:
            raise ValueError(f"client_color must be one of {CLIENT_COLORS}, got {client_color!r}")
        if num_steps is not None and num_steps <= 0:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps}")
        self.policy = policy
        self.config = policy.config
        self.shape = RequestShape(self.config.num_views, self.config.state_dim, self.config.per_action_dim)
        self.client_color = client_color
        self.seed = seed
        self.num_steps = num_steps
        self.arm_key = arm_key
        self.dataset_key = dataset_key
        self._stats_data = norm_stats_data
        self._policies: dict[tuple[str | None, str | None], Evo1Policy] = {}
        self.last_timing: RequestTiming | None = None
        if norm_stats_data is not None and _stats_are_ambiguous(norm_stats_data, arm_key, dataset_key):
            log.warning(
                "norm stats hold several arms/datasets and no default was chosen: requests must name "
                "arm_key (and dataset_key); choose defaults with --arm-key / --dataset-key"
            )
        elif norm_stats_data is not None:
            self.policy_for(None, None)  # fail at start-up, not on the first request, if the stats are bad

    # ------------------------------------------------------------------ one request
    def handle(self, message: str | bytes) -> tuple[str, RequestTiming]:
        """Serve one raw message; bad requests (and model failures) become error replies, never raise."""
        timing = RequestTiming()
        start = time.perf_counter()
        try:
            try:
                request = parse_request(message, self.shape)
            finally:
                timing.decode_ms = (time.perf_counter() - start) * 1e3
            mark = time.perf_counter()
            try:
                chunk = self.infer(request)
            finally:
                timing.model_ms = (time.perf_counter() - mark) * 1e3
            mark = time.perf_counter()
            reply = encode_actions(chunk)
            timing.encode_ms = (time.perf_counter() - mark) * 1e3
        except ProtocolError as exc:
            timing.error_field = exc.field
            reply = exc.to_json()
        except Exception as exc:  # a model failure must not take the server down
            log.exception("inference failed")
            timing.error_field = "model"
            reply = ProtocolError("model", f"inference failed: {type(exc).__name__}: {exc}").to_json()
        self.last_timing = timing
        return reply, timing

    def infer(self, request: InferenceRequest) -> np.ndarray:
        """A validated request -> [horizon, per_action_dim] float32 (dims past the stats' are 0)."""
        policy = self.policy_for(request.arm_key, request.dataset_key)
        state = self._state(request.state, policy.norm_stats)
        actions = policy.predict(
            self.prepare_images(request.images, request.image_mask),
            request.image_mask,
            state,
            request.prompt,
            action_mask=request.action_mask,
            num_steps=self.num_steps,
            generator=self.seed,
        )
        chunk = np.zeros((actions.shape[0], self.config.per_action_dim), dtype=np.float32)
        chunk[:, : actions.shape[1]] = actions
        return chunk

    def prepare_images(self, images: list[np.ndarray | None], mask: list[bool]) -> list[np.ndarray | None]:
        """Client views -> RGB at the model's size, as the official server does (cv2 bilinear, then BGR->RGB).

        Absent views become None: the policy feeds a black image there, which is what every official
        client sends for them.
        """
        size = self.config.image_size
        out: list[np.ndarray | None] = []
        for image, present in zip(images, mask, strict=True):
            if not present or image is None:
                out.append(None)
                continue
            if image.shape[:2] != (size, size):
                image = cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=cv2.INTER_LINEAR)
            if self.client_color == "bgr":
                image = image[..., ::-1]
            out.append(np.ascontiguousarray(image))
        return out

    def policy_for(self, arm_key: str | None, dataset_key: str | None) -> Evo1Policy:
        """The policy (shared model, per-arm/dataset norm stats) a request's keys select."""
        arm = arm_key if arm_key is not None else self.arm_key
        dataset = dataset_key if dataset_key is not None else self.dataset_key
        key = (arm, dataset)
        if key in self._policies:
            return self._policies[key]
        if self._stats_data is None:
            if arm_key is not None or dataset_key is not None:
                raise ProtocolError(
                    "arm_key", "this server was given one set of norm stats; omit arm_key/dataset_key"
                )
            return self.policy
        try:
            stats = NormStats.from_dict(self._stats_data, arm, dataset)
            policy = Evo1Policy(self.policy.model, self.policy.tokenizer, stats)
        except ValueError as exc:
            raise ProtocolError("dataset_key" if "dataset" in str(exc) else "arm_key", str(exc)) from exc
        self._policies[key] = policy
        return policy

    @staticmethod
    def _state(state: np.ndarray, stats: NormStats) -> np.ndarray:
        """Drop client-side zero padding (xArm/Aloha clients pad to 24); anything else must match the stats."""
        n, dim = state.shape[0], stats.state_dim
        if n < dim:
            raise ProtocolError("state", f"has {n} values; the checkpoint's norm stats describe {dim}")
        if n > dim and np.any(state[dim:] != 0):
            raise ProtocolError(
                "state",
                f"has {n} values but the norm stats describe {dim}; entries {dim}..{n - 1} must be 0 (padding)",
            )
        return state[:dim]


def _stats_are_ambiguous(data: dict[str, Any], arm: str | None, dataset: str | None) -> bool:
    if STATE_KEY in data and ACTION_KEY in data:
        return False
    if arm is None:
        if len(data) != 1:
            return True
        arm = next(iter(data))
    block = data.get(arm)
    if not isinstance(block, dict) or (STATE_KEY in block and ACTION_KEY in block):
        return False
    return dataset is None and len(block) != 1


# ---------------------------------------------------------------------------------------- loading
@dataclass
class LoadedServer:
    policy: Evo1Policy
    norm_stats_data: dict[str, Any] | None
    checkpoint_format: str  # "project" or "official"


def load_policy(
    checkpoint: str | Path,
    tokenizer: str | Path | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    arm_key: str | None = None,
    dataset_key: str | None = None,
) -> LoadedServer:
    """Load a project (safetensors) or official (DeepSpeed, weights only) checkpoint directory.

    Format detection and loading are the model's (`evo1_ros.model.load_policy`); serve adds the raw
    norm stats (for per-request arm/dataset keys) and the "never unpickles" advice.
    """
    fmt = loading.checkpoint_format(checkpoint)
    directory = Path(checkpoint).expanduser()
    stats_path = directory / NORM_STATS_NAME
    data: dict[str, Any] | None = None
    if stats_path.is_file():
        try:
            data = json.loads(stats_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{stats_path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not data:
            raise CheckpointError(f"{stats_path} must be a non-empty JSON object keyed by arm name")
    load_arm, load_dataset = _loader_keys(data, arm_key, dataset_key)
    try:
        policy = loading.load_policy(
            directory,
            fmt=fmt,
            tokenizer_dir=tokenizer,
            device=device,
            dtype=dtype,
            arm_key=load_arm,
            dataset_key=load_dataset,
        )
    except CheckpointError as exc:
        if fmt == "official" and "allow_pickle" in str(exc):
            raise CheckpointError(
                f"{exc}. `evo1 serve` never unpickles; convert the checkpoint once on a machine you trust: "
                "Evo1Policy.from_official(DIR, allow_pickle=True).save_pretrained(OUT), then serve OUT"
            ) from exc
        raise
    return LoadedServer(policy=policy, norm_stats_data=data, checkpoint_format=fmt)


def _loader_keys(
    data: dict[str, Any] | None, arm: str | None, dataset: str | None
) -> tuple[str | None, str | None]:
    """Keys that let the checkpoint loader read norm_stats.json even when it holds several arms/datasets.

    Which stats a request uses is decided per request (PolicyService.policy_for); the loader only
    needs one valid entry.
    """
    if data is None or (STATE_KEY in data and ACTION_KEY in data):
        return arm, dataset
    if arm is None:
        arm = sorted(data)[0]
    block = data.get(arm)
    if (
        dataset is None
        and isinstance(block, dict)
        and not (STATE_KEY in block and ACTION_KEY in block)
        and block
    ):
        dataset = sorted(block)[0]
    return arm, dataset


# ---------------------------------------------------------------------------------------- websocket
def _peer(ws: Any) -> str:
    address = getattr(ws, "remote_address", None)
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


async def serve_websocket(
    service: PolicyService,
    host: str,
    port: int,
    stop: asyncio.Future[Any],
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    compression: str = "none",
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve until ``stop`` completes; then finish the request in flight and close every connection.

    Messages over max_message_bytes get a JSON error (field "message"); the transport itself refuses
    frames over twice that (websockets closes the connection with 1009), so memory stays bounded.
    """
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    if max_message_bytes <= 0:
        raise ValueError(f"max_message_bytes must be > 0, got {max_message_bytes}")
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evo1-serve-model")
    numbers = itertools.count(1)
    closing = False
    busy = 0  # requests received and not yet answered
    idle = asyncio.Event()
    idle.set()

    async def handler(ws: Any) -> None:
        nonlocal busy
        peer = _peer(ws)
        log.info("client %s connected", peer)
        try:
            while True:
                raw = await ws.recv(decode=False)
                if closing:  # arrived after the stop request: not started, the connection goes away
                    await ws.close(1001, "server shutting down")
                    return
                busy += 1
                idle.clear()
                try:
                    await ws.send(await answer(raw, next(numbers), peer))
                finally:
                    busy -= 1
                    if busy == 0:
                        idle.set()
        except ConnectionClosed as exc:
            log.info("client %s disconnected (%s)", peer, exc.rcvd.code if exc.rcvd else "no close frame")

    async def answer(raw: bytes, number: int, peer: str) -> str:
        log.debug("request %d from %s: %d bytes received", number, peer, len(raw))
        if len(raw) > max_message_bytes:
            log.warning("request %d from %s refused: %d bytes is over the limit", number, peer, len(raw))
            return ProtocolError(
                "message",
                f"{len(raw)} bytes exceeds this server's limit of {max_message_bytes} bytes (--max-message-bytes)",
            ).to_json()
        reply, timing = await loop.run_in_executor(executor, service.handle, raw)
        if timing.error_field is None:
            log.info("request %d from %s: %s", number, peer, timing.summary())
        else:
            error = json.loads(reply).get("error")
            log.warning("request %d from %s refused (field %s): %s", number, peer, timing.error_field, error)
        return reply

    try:
        async with serve(
            handler,
            host,
            port,
            max_size=2 * max_message_bytes,
            compression=None if compression == "none" else "deflate",
            # Clients that block their event loop while executing a chunk could not answer pings;
            # evo1-flash's server disables them too.
            ping_interval=None,
        ) as server:
            bound = server.sockets[0].getsockname()[1] if server.sockets else port
            if on_ready is not None:
                on_ready(int(bound))
            await stop
            closing = True
            if busy:
                log.info("shutting down: answering %d request(s) in flight first", busy)
            await idle.wait()
            log.info("shutting down: closing connections")
        # leaving `serve` closed the listener and every connection (1001 going away)
    finally:
        await loop.run_in_executor(None, executor.shutdown, True)


class ServerThread:
    """The websocket server on a background thread (tests, benchmarks, embedding in another program)."""

    def __init__(
        self,
        service: PolicyService,
        host: str = "127.0.0.1",
        port: int = 0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        compression: str = "none",
    ) -> None:
        self.service = service
        self.host = host
        self.port = port
        self._kwargs = {"max_message_bytes": max_message_bytes, "compression": compression}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="evo1-serve", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the server did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"the server failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 60.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(lambda: self._stop.done() or self._stop.set_result(None))
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = self._loop.create_future()

            def ready(port: int) -> None:
                self.port = port
                self._ready.set()

            await serve_websocket(
                self.service, self.host, self.port, self._stop, on_ready=ready, **self._kwargs
            )

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

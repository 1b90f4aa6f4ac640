"""``evo1 serve``: the official Evo-1 websocket protocol in front of a project or official checkpoint.

Registered by ``evo1_ros/cli/main.py``; torch is imported only when the command runs, so ``evo1 --help``
stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from pathlib import Path

from .protocol import DEFAULT_MAX_MESSAGE_BYTES, OFFICIAL_PORT

_EPILOG = """\
examples:
  evo1 serve --checkpoint ~/ckpt/Evo1_MetaWorld              # official checkpoint, ws://127.0.0.1:9000
  evo1 serve --checkpoint runs/pick_can/step_final --client-color rgb   # LIBERO / xArm6 clients send RGB
  evo1 serve --checkpoint DIR --host 0.0.0.0 --port 9000 --device cuda:0  # reachable from the network

The official clients then connect unchanged (set their server URL to ws://HOST:PORT).
Ctrl-C (or SIGTERM) finishes the request in flight, closes the connections and exits 0; a second Ctrl-C
exits at once with 130.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command to the ``evo1`` parser."""
    p = subparsers.add_parser(
        "serve",
        help="serve a checkpoint over the official Evo-1 websocket protocol (port 9000)",
        description="Serve Evo-1 over the official websocket JSON protocol (Evo1_server.py, main and evo1-flash "
        "request variants): 3 images, image_mask, raw state, action_mask, prompt [, arm_key, dataset_key] in; "
        "50 x 24 actions in robot units out. Bad requests get {'error', 'field'} and the server keeps serving.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="checkpoint directory: project (model.safetensors) or official (mp_rank_00_model_states.pt)",
    )
    p.add_argument(
        "--tokenizer", type=Path, default=None, help="tokenizer directory (default: found in the checkpoint)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1, this machine only; 0.0.0.0 = every interface, like the official server)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=OFFICIAL_PORT,
        help=f"TCP port (default {OFFICIAL_PORT}; 0 = any free port)",
    )
    p.add_argument("--device", default="auto", help="auto (default: cuda if available), cpu, cuda or cuda:N")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=("auto", "float32", "bfloat16", "float16"),
        help="model dtype (default auto: bfloat16 on CUDA like the official server, float32 on CPU)",
    )
    p.add_argument(
        "--client-color",
        choices=("bgr", "rgb"),
        default="bgr",
        help="channel order the clients send (default bgr, what the official server assumes; the official "
        "MetaWorld and RoboTwin clients send BGR, LIBERO, LIBERO-plus and xArm6 send RGB)",
    )
    p.add_argument(
        "--max-message-bytes",
        type=int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help=f"largest request answered (default {DEFAULT_MAX_MESSAGE_BYTES}, as the official server); larger ones "
        "get a JSON error, ones over twice this close the connection",
    )
    p.add_argument(
        "--arm-key", default=None, help="default norm-stats arm for requests that name none (evo1-flash)"
    )
    p.add_argument(
        "--dataset-key", default=None, help="default norm-stats dataset for requests that name none"
    )
    p.add_argument(
        "--num-steps",
        type=int,
        default=None,
        help="Euler steps per chunk (default: the checkpoint config's, 32 as the main server; evo1-flash uses 50)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed every request's noise (same request -> same answer; default: random)",
    )
    p.add_argument(
        "--compression",
        choices=("none", "deflate"),
        default="none",
        help="websocket permessage-deflate (default none: on loopback it only costs time, see bench/serve_latency.py)",
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.set_defaults(func=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("evo1_ros.serve")
    # websockets' DEBUG output is a dump of every frame; keep it out even at --log-level DEBUG.
    logging.getLogger("websockets").setLevel(max(logging.INFO, getattr(logging, args.log_level)))
    if not 0 <= args.port <= 65535:
        print(f"evo1 serve: error: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    if args.max_message_bytes <= 0:
        print("evo1 serve: error: --max-message-bytes must be > 0", file=sys.stderr)
        return 2
    if args.num_steps is not None and args.num_steps <= 0:
        print("evo1 serve: error: --num-steps must be > 0", file=sys.stderr)
        return 2

    from evo1_ros.model import CheckpointError, resolve_device, resolve_dtype

    from .server import PolicyService, load_policy, serve_websocket

    try:
        device = resolve_device(args.device, "--device")
        dtype = resolve_dtype(args.dtype, device)
        loaded = load_policy(args.checkpoint, args.tokenizer, device, dtype, args.arm_key, args.dataset_key)
        service = PolicyService(
            loaded.policy,
            loaded.norm_stats_data,
            arm_key=args.arm_key,
            dataset_key=args.dataset_key,
            client_color=args.client_color,
            seed=args.seed,
            num_steps=args.num_steps,
        )
    except (CheckpointError, FileNotFoundError, ValueError, TypeError) as exc:
        print(f"evo1 serve: error: {exc}", file=sys.stderr)
        return 2
    log.info(
        "loaded %s checkpoint %s on %s/%s; clients send %s; %d Euler steps",
        loaded.checkpoint_format,
        args.checkpoint,
        device,
        dtype,
        args.client_color.upper(),
        args.num_steps or loaded.policy.config.num_inference_steps,
    )
    if not _is_loopback(args.host):
        log.warning("binding %s: anyone who can reach this port can drive the policy's outputs", args.host)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def request_stop(signum: int) -> None:
            # First signal: clean shutdown. Later ones fall back to the default (KeyboardInterrupt -> 130).
            for s in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(s)
            log.info("received %s", signal.Signals(signum).name)
            if not stop.done():
                stop.set_result(None)

        for s in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(s, request_stop, s)

        def ready(port: int) -> None:
            print(f"evo1 serve: listening on ws://{args.host}:{port}", flush=True)

        await serve_websocket(
            service,
            args.host,
            args.port,
            stop,
            max_message_bytes=args.max_message_bytes,
            compression=args.compression,
            on_ready=ready,
        )

    try:
        asyncio.run(main())
    except OSError as exc:  # port in use, address not available
        print(
            f"evo1 serve: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    log.info("stopped")
    return 0

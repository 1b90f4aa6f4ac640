"""`evo1 serve` round-trip latency: what the official nested-list JSON protocol costs next to the model.

One request = 3 × 448² views (all present), the xArm6 state and action mask, served by the tiny model
(tests/data/evo1_reference_A, official layout) through the real websocket server (on a background
thread of this process) and the project client. Variants, side by side:

* direct   — `Evo1Policy.predict` on the same inputs (no protocol at all);
* list     — the official protocol (images as nested JSON lists), no websocket compression;
* list+deflate — the same with permessage-deflate (what websockets negotiates by default);
* b64      — the project extension (images as base64 raw uint8 in the same JSON message).

For every websocket variant the round trip is split into: client encode (build + json.dumps),
server decode (JSON parse + validation + lists -> arrays), model (resize/colour + predict), server
encode, and the rest (transport, websocket framing/compression, client reply decode).
p99 of a few dozen samples is close to the maximum; read it as "worst seen".

Example:
    .venv/bin/python bench/serve_latency.py --repeats 20
Writes bench/results/serve_latency.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import websockets  # noqa: E402

from evo1_ros.serve.client import Evo1Client  # noqa: E402
from evo1_ros.serve.protocol import build_request  # noqa: E402
from evo1_ros.serve.server import PolicyService, ServerThread, load_policy  # noqa: E402

RESULTS = REPO / "bench" / "results" / "serve_latency.json"
DEFAULT_CHECKPOINT = REPO / "tests" / "data" / "evo1_reference_A"
TASK = "pick up the red can and put it in the white box"
STATE = [4.3, 15.5, -9.4, 182.6, 100.4, 0.3, 612.0, *([0.0] * 17)]
ACTION_MASK = [1] * 7 + [0] * 17
SEED = 0


def _stats(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples, dtype=float)
    return {
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "min": float(a.min()),
        "mean": float(a.mean()),
    }


VARIANTS = (("list", "list", "none"), ("list+deflate", "list", "deflate"), ("b64", "b64", "none"))
PARTS = ("client_encode_ms", "round_trip_ms", "decode_ms", "model_ms", "encode_ms", "rest_ms")


def _direct_once(service: PolicyService, rgb: list[np.ndarray]) -> float:
    """predict() on the RGB views the server would hand it (the colour swap is not part of the model)."""
    start = time.perf_counter()
    service.policy_for(None, None).predict(
        rgb, [1, 1, 1], np.asarray(STATE[:7]), TASK, action_mask=ACTION_MASK, generator=SEED
    )
    return (time.perf_counter() - start) * 1e3


def _websocket_once(
    service: PolicyService, client: Evo1Client, views: list[np.ndarray], encoding: str
) -> dict:
    start = time.perf_counter()
    message = json.dumps(build_request(views, [1, 1, 1], STATE, TASK, ACTION_MASK, image_encoding=encoding))
    encoded = time.perf_counter()
    reply = client.send_raw(message)
    actions = np.asarray(json.loads(reply))
    done = time.perf_counter()
    assert actions.shape == (50, 24), reply[:200]
    timing = service.last_timing
    assert timing is not None and timing.error_field is None
    round_trip = (done - encoded) * 1e3
    return {
        "client_encode_ms": (encoded - start) * 1e3,
        "round_trip_ms": round_trip,
        "decode_ms": timing.decode_ms,
        "model_ms": timing.model_ms,
        "encode_ms": timing.encode_ms,
        "rest_ms": round_trip - timing.total_ms,
        "bytes": len(message),
    }


def run_all(service: PolicyService, views: list[np.ndarray], repeats: int, warmup: int) -> dict[str, Any]:
    """Every variant once per round, in a rotating order, so a busy machine slows them all alike."""
    rgb = [np.ascontiguousarray(v[..., ::-1]) for v in views]
    direct: list[float] = []
    samples: dict[str, dict[str, list[float]]] = {name: {p: [] for p in PARTS} for name, _, _ in VARIANTS}
    sizes: dict[str, int] = {}
    with ExitStack() as stack:
        clients = {}
        for name, _, compression in VARIANTS:
            server = stack.enter_context(ServerThread(service, compression=compression))
            clients[name] = stack.enter_context(
                Evo1Client(server.url, compression=None if compression == "none" else "deflate")
            )
        order = ["direct"] + [name for name, _, _ in VARIANTS]
        encodings = {name: enc for name, enc, _ in VARIANTS}
        for i in range(warmup + repeats):
            print(
                f"round {i + 1}/{warmup + repeats}{' (warm-up)' if i < warmup else ''}",
                file=sys.stderr,
                flush=True,
            )
            shift = i % len(order)
            for name in order[shift:] + order[:shift]:
                if name == "direct":
                    ms = _direct_once(service, rgb)
                    if i >= warmup:
                        direct.append(ms)
                    continue
                parts = _websocket_once(service, clients[name], views, encodings[name])
                sizes[name] = int(parts.pop("bytes"))
                if i >= warmup:
                    for key, value in parts.items():
                        samples[name][key].append(value)
    results: dict[str, Any] = {"direct": {"model_ms": _stats(direct)}}
    for name, parts_ in samples.items():
        entry: dict[str, Any] = {k: _stats(v) for k, v in parts_.items()}
        entry["request_mb"] = sizes[name] / 1e6
        results[name] = entry
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint to serve")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    loaded = load_policy(args.checkpoint, device=args.device)
    service = PolicyService(loaded.policy, loaded.norm_stats_data, seed=SEED)
    rng = np.random.default_rng(0)
    views = [rng.integers(0, 256, size=(448, 448, 3), dtype=np.uint8) for _ in range(3)]

    results = run_all(service, views, args.repeats, args.warmup)

    cols = PARTS
    head = (
        "variant",
        "MB",
        "client enc",
        "round trip",
        "srv decode",
        "model",
        "srv encode",
        "transport+rest",
    )
    print(
        f"\n3 x 448² views, tiny model ({loaded.checkpoint_format} checkpoint), {args.device}, "
        f"{args.repeats} requests; ms as p50 / p99"
    )
    print(" | ".join(f"{h:>16}" for h in head))
    direct = results["direct"]["model_ms"]
    row = ["direct predict", "-", "-", "-", "-", f"{direct['p50']:.0f} / {direct['p99']:.0f}", "-", "-"]
    print(" | ".join(f"{c:>16}" for c in row))
    for name in ("list", "list+deflate", "b64"):
        r = results[name]
        row = [name, f"{r['request_mb']:.2f}"] + [f"{r[c]['p50']:.0f} / {r[c]['p99']:.0f}" for c in cols]
        print(" | ".join(f"{c:>16}" for c in row))

    lists, b64 = results["list"], results["b64"]
    saved = lists["round_trip_ms"]["p50"] - b64["round_trip_ms"]["p50"]
    overhead_list = lists["round_trip_ms"]["p50"] - direct["p50"]
    overhead_b64 = b64["round_trip_ms"]["p50"] - direct["p50"]
    verdict = (
        f"protocol overhead over a direct predict (p50 round trip - p50 predict): nested lists "
        f"{overhead_list:.0f} ms, b64 {overhead_b64:.0f} ms; b64 saves {saved:.0f} ms per request on the "
        f"server side plus {lists['client_encode_ms']['p50'] - b64['client_encode_ms']['p50']:.0f} ms of client "
        f"encoding, and shrinks the message {lists['request_mb'] / b64['request_mb']:.1f}x"
    )
    print("\n" + verdict)
    payload = {
        "benchmark": "serve_latency",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "websockets": websockets.__version__,
        },
        "setup": {
            "checkpoint": str(
                args.checkpoint.relative_to(REPO) if args.checkpoint.is_relative_to(REPO) else args.checkpoint
            ),
            "device": args.device,
            "views": "3 x 448x448x3 uint8, all present",
            "repeats": args.repeats,
            "warmup": args.warmup,
            "euler_steps": loaded.policy.config.num_inference_steps,
        },
        "results_ms": results,
        "verdict": verdict,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

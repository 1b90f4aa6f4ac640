"""Evo-1 model latency / memory benchmark (random weights, tokenizer built on the fly — no files needed).

Measures, for each model size, side by side in one run:
* ours:  backbone once per chunk, then only the head per Euler step (context keys/values cached),
         in the requested dtype and attention backend;
* naive: a literal port — float32, eager attention, backbone recomputed for every Euler step, head
         re-projecting the context every step. On slow devices the naive chunk is measured for
         `--naive-max-steps` steps and scaled linearly to the full step count (every naive step does the
         same work); the JSON says when that happened.

Examples:
    .venv/bin/python bench/model_latency.py --size tiny --repeats 5
    .venv/bin/python bench/model_latency.py --size full --repeats 1 --warmup 0 --naive-max-steps 1
    python bench/model_latency.py --device cuda --dtype bfloat16 --size full tiny --repeats 20

Writes bench/results/model_latency.json (entries keyed by device/dtype/size are merged) and prints a table.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from evo1_ros.model import Evo1Config, Evo1Model, Evo1Policy, NormStats, build_model  # noqa: E402
from evo1_ros.model.processing.tokenizer import build_byte_level_tokenizer, load_tokenizer  # noqa: E402

RESULTS = REPO / "bench" / "results" / "model_latency.json"
TASK = "pick up the red can and put it in the white box"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_ms(
    fn: Callable[[], Any],
    device: torch.device,
    repeats: int,
    warmup: int,
    minima: dict[str, float] | None = None,
    label: str = "",
) -> float:
    """Median wall time of fn() in milliseconds (device-synchronised); the minimum goes to `minima[label]`
    (on a shared CPU the minimum is the better estimate of the uncontended latency)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    samples = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        _sync(device)
        samples.append((time.perf_counter() - start) * 1e3)
    if minima is not None:
        minima[label] = min(samples)
    return statistics.median(samples)


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "torch.cuda.max_memory_allocated"
    return resource.getrusage(
        resource.RUSAGE_SELF
    ).ru_maxrss / 1024, "process peak RSS (includes model build)"


def _resolve_attn(name: str, device: torch.device) -> str:
    if name != "auto":
        return name
    if device.type == "cuda":
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            return "sdpa"
    return "sdpa"


def _policy(size: str, device: torch.device, dtype: str, attn: str, tokenizer: Any) -> Evo1Policy:
    context_id = tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    base = Evo1Config() if size == "full" else Evo1Config.tiny()
    config = base.replace(
        img_context_token_id=context_id,
        device=str(device),
        dtype=dtype,
        attn_implementation=attn,
        dropout=0.0,
    )
    torch.manual_seed(0)
    model = build_model(config, random_init=True)
    stats = NormStats(
        state_min=np.full(7, -3.0),
        state_max=np.full(7, 3.0),
        action_min=np.full(7, -3.0),
        action_max=np.full(7, 3.0),
    )
    return Evo1Policy(model, tokenizer, stats)


def _inputs(policy: Evo1Policy) -> dict[str, torch.Tensor]:
    """Preprocessed model inputs for one observation (3 views, one absent), already on the device."""
    from evo1_ros.model.processing.images import preprocess_views

    cfg = policy.config
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(2)] + [None]
    mask = [True, True, False]
    device = policy.device
    pixels = preprocess_views(images, mask, cfg.image_size, device).unsqueeze(0)
    ids, attn = policy.prompts.encode([TASK], torch.tensor([mask]))
    dtype = policy.model.action_head.dtype
    return {
        "pixel_values": pixels.to(device, dtype),
        "input_ids": ids.to(device),
        "attention_mask": attn.to(device),
        "state": torch.zeros(1, cfg.state_dim, device=device, dtype=dtype),
        "action_mask": torch.ones(cfg.per_action_dim, device=device),
        "x0": torch.rand(1, cfg.action_dim, generator=torch.Generator().manual_seed(0)) * 2 - 1,
        "images": images,
        "image_mask": mask,
    }


def _naive_chunk(model: Evo1Model, inp: dict[str, Any], steps: int, measured_steps: int) -> None:
    """Literal port: for every Euler step, recompute the backbone and the head's context projection."""
    cfg = model.config
    x = inp["x0"].to(inp["state"].device, torch.float32)
    mask = inp["action_mask"].float().view(1, 1, -1).expand(1, cfg.horizon, -1).reshape(1, -1)
    with torch.inference_mode():
        for i in range(measured_steps):
            fused = model.embed(
                inp["pixel_values"].float(), inp["input_ids"], inp["attention_mask"]
            ).fused_tokens
            v = model.action_head(fused.float(), inp["state"].float(), x * mask, int(i / steps * 1000))
            x = x + v / steps


def bench_size(args: argparse.Namespace, size: str, tokenizer: Any) -> dict[str, Any]:
    device = torch.device(args.device)
    attn = _resolve_attn(args.attn, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    print(f"[{size}] building the model with random weights on {device} ({args.dtype}, {attn}) …", flush=True)
    policy = _policy(size, device, args.dtype, attn, tokenizer)
    model = policy.model
    params = sum(p.numel() for p in model.parameters())
    inp = _inputs(policy)
    warmup = args.warmup
    repeats = args.repeats
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def backbone() -> None:
        with torch.inference_mode():
            model.embed(inp["pixel_values"], inp["input_ids"], inp["attention_mask"])

    print(f"[{size}] backbone …", flush=True)
    minima: dict[str, float] = {}
    backbone_ms = _time_ms(backbone, device, repeats, warmup, minima, "backbone_ms")
    with torch.inference_mode():
        fused = model.embed(inp["pixel_values"], inp["input_ids"], inp["attention_mask"]).fused_tokens.float()
        context = model.action_head.encode_context(fused, inp["state"])
    head_steps = 8

    def head() -> None:
        with torch.inference_mode():
            x = inp["x0"].to(device, model.action_head.dtype)
            for i in range(head_steps):
                model.action_head.predict_velocity(x, i * 100, context)

    print(f"[{size}] head …", flush=True)
    head_ms = _time_ms(head, device, repeats, warmup, minima, "head_ms_per_step") / head_steps
    minima["head_ms_per_step"] /= head_steps

    chunk_ms: dict[str, float] = {}
    for steps in args.steps:
        print(f"[{size}] chunk at {steps} steps …", flush=True)

        def chunk(steps: int = steps) -> None:
            model.predict_chunk(
                inp["pixel_values"],
                inp["input_ids"],
                inp["attention_mask"],
                inp["state"],
                inp["action_mask"],
                num_steps=steps,
                x0=inp["x0"],
            )

        chunk_ms[str(steps)] = _time_ms(chunk, device, repeats, warmup, minima, f"chunk_ms@{steps}")
    peak_mb, peak_kind = _peak_memory_mb(device)

    graph_ms: dict[str, float] = {}
    if device.type == "cuda" and not args.no_cuda_graph:
        from evo1_ros.model.modeling.cuda_graph_sampler import CudaGraphHeadSampler

        for steps in args.steps:
            print(f"[{size}] chunk at {steps} steps, head replayed from a CUDA graph …", flush=True)
            sampler = CudaGraphHeadSampler(model, 1, inp["input_ids"].shape[1], steps)

            def graphed(sampler: CudaGraphHeadSampler = sampler) -> None:
                with torch.inference_mode():
                    out = model.embed(inp["pixel_values"], inp["input_ids"], inp["attention_mask"])
                sampler(out.fused_tokens.float(), inp["state"], inp["action_mask"], inp["x0"])

            graph_ms[str(steps)] = _time_ms(graphed, device, repeats, warmup)
        peak_mb, peak_kind = _peak_memory_mb(device)

    print(f"[{size}] end-to-end policy.predict …", flush=True)
    first = args.steps[0]
    predict_ms = _time_ms(
        lambda: policy.predict(
            inp["images"], inp["image_mask"], np.zeros(7), TASK, num_steps=first, generator=0
        ),
        device,
        repeats,
        warmup,
    )

    # ---- naive path: float32 copy, eager attention, backbone per step
    naive_model = model if args.dtype == "float32" else copy.deepcopy(model).float()
    naive_model.embedder.set_attn_implementation("eager")
    naive: dict[str, Any] = {"dtype": "float32", "attn_implementation": "eager", "chunk_ms": {}}
    naive_inp = dict(inp, pixel_values=inp["pixel_values"].float(), state=inp["state"].float())
    for steps in args.steps:
        measured = steps if args.naive_max_steps is None else min(steps, args.naive_max_steps)
        print(f"[{size}] naive chunk at {steps} steps (measuring {measured}) …", flush=True)
        ms = _time_ms(
            lambda steps=steps, measured=measured: _naive_chunk(naive_model, naive_inp, steps, measured),
            device,
            repeats,
            min(warmup, 1),
        )
        naive["chunk_ms"][str(steps)] = ms * steps / measured
        if measured != steps:
            naive.setdefault("extrapolated_from_steps", {})[str(steps)] = measured
    if naive_model is model:
        model.embedder.set_attn_implementation(attn)

    first_key = str(first)
    return {
        "size": size,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "dtype": args.dtype,
        "attn_implementation": attn,
        "attention_semantics": policy.config.attention_semantics,
        "parameters": params,
        "repeats": repeats,
        "warmup": warmup,
        "backbone_ms": backbone_ms,
        "head_ms_per_step": head_ms,
        "chunk_ms": chunk_ms,
        "chunks_per_s": {k: 1000.0 / v for k, v in chunk_ms.items()},
        "chunk_ms_cuda_graph": graph_ms,
        "chunks_per_s_cuda_graph": {k: 1000.0 / v for k, v in graph_ms.items()},
        "predict_end_to_end_ms": {first_key: predict_ms},
        "peak_memory_mb": peak_mb,
        "peak_memory_kind": peak_kind,
        "naive": naive,
        "speedup_vs_naive": {k: naive["chunk_ms"][k] / chunk_ms[k] for k in chunk_ms},
        "min_over_repeats": minima,
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'size':5} {'device':6} {'dtype':9} {'params':>8} {'backbone':>10} {'head/step':>10} "
        + " ".join(f"{'chunk@' + k:>11} {'naive@' + k:>11}" for k in rows[0]["chunk_ms"])
        + f" {'chunks/s':>9} {'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        first = next(iter(r["chunk_ms"]))
        cells = " ".join(
            f"{r['chunk_ms'][k]:>9.1f}ms {r['naive']['chunk_ms'][k]:>9.1f}ms" for k in r["chunk_ms"]
        )
        print(
            f"{r['size']:5} {r['device'][:6]:6} {r['dtype']:9} {r['parameters'] / 1e6:>7.1f}M "
            f"{r['backbone_ms']:>8.1f}ms {r['head_ms_per_step']:>8.2f}ms {cells} "
            f"{r['chunks_per_s'][first]:>9.2f} {r['peak_memory_mb']:>9.0f}"
        )
        if r["chunk_ms_cuda_graph"]:
            graphs = ", ".join(
                f"{k} steps {v:.1f} ms ({1000 / v:.1f} chunks/s)" for k, v in r["chunk_ms_cuda_graph"].items()
            )
            print(f"      with the head replayed from a CUDA graph: {graphs}")
        if "extrapolated_from_steps" in r["naive"]:
            print(
                f"      naive chunk times scaled from {r['naive']['extrapolated_from_steps']} measured steps"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "bfloat16", "float16"],
        help="default: bfloat16 on cuda, float32 on cpu",
    )
    parser.add_argument("--size", nargs="+", default=["tiny"], choices=["full", "tiny"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, nargs="+", default=[32, 10])
    parser.add_argument("--attn", default="auto", choices=["auto", "sdpa", "eager", "flash_attention_2"])
    parser.add_argument(
        "--naive-max-steps",
        type=int,
        default=None,
        help="measure at most this many naive Euler steps and scale (slow devices)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--no-cuda-graph", action="store_true", help="on cuda, skip the CUDA-graph head variant"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.dtype is None:
        args.dtype = "bfloat16" if args.device == "cuda" else "float32"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")
    if args.repeats < 1 or any(s < 1 for s in args.steps):
        parser.error("--repeats and --steps must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = load_tokenizer(build_byte_level_tokenizer(tmp))
    rows = [bench_size(args, size, tokenizer) for size in args.size]

    existing: dict[str, Any] = {}
    if args.output.is_file():
        try:
            existing = json.loads(args.output.read_text())
        except json.JSONDecodeError:
            existing = {}
    results = existing.get("results", {}) if isinstance(existing, dict) else {}
    for row in rows:
        results[f"{row['device']}/{row['dtype']}/{row['size']}"] = dict(
            row,
            measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            torch=torch.__version__,
            cpu_threads=torch.get_num_threads(),
            load_average_after=list(os.getloadavg()),
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"benchmark": "model_latency", "results": results}, indent=2) + "\n")
    _print_table(rows)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

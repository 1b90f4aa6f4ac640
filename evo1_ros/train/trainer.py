"""The Evo-1 training loop: stage 1 (head only) / stage 2 (everything), one process or DDP.

One process and N processes (`torchrun`, or `accelerate launch`, which sets the same environment) see the
same global batches: `batch_size` is global, each rank takes its slice, the flow-matching noise and time
draws for the whole global batch come from a generator seeded by (seed, step), and the loss is normalised by
the global count of active elements. Resuming restores weights, optimizer, scheduler, step and RNG states,
and the data order is a function of the step, so a resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from evo1_ros.model import Evo1Model
from evo1_ros.model.checkpoints.pretrained import load_state_into
from evo1_ros.model.modeling import flow_matching as fm
from evo1_ros.model.processing.images import normalize_pixels
from evo1_ros.model.processing.prompt import PromptTokenizer
from evo1_ros.model.processing.tokenizer import load_tokenizer

from . import checkpoint_io as ckio
from .config import TrainConfig, TrainConfigError
from .data import DataPlan, ResumableBatchSampler, SampleOrder, WindowDataset, resolve_datasets
from .init import build_initial_model, model_config_for
from .logs import CSV_NAME, PNG_NAME, RunLog, plot_loss

MAX_BAD_STEPS = 5


@dataclass
class TrainResult:
    """What the one-line summary reports."""

    steps: int
    final_loss: float
    samples_per_s: float
    checkpoint: Path
    seconds: float

    def summary(self) -> str:
        return (
            f"trained to step {self.steps}: {self.samples_per_s:.1f} samples/s, final loss {self.final_loss:.4f}, "
            f"checkpoint {self.checkpoint}"
        )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on >= 2-D weights; none on biases, 1-D params and anything named *norm*."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or name.endswith(".bias") or "norm" in name.lower():
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup from 0 over `warmup` steps, then cosine to 0 at `total` (factor for optimizer step `step`)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    progress = min((step - warmup) / (total - warmup), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def set_stage(model: Evo1Model, stage: str) -> None:
    """stage1: VLM frozen (no grad, eval); stage2: everything trains."""
    model.requires_grad_(True)
    if stage == "stage1":
        model.embedder.requires_grad_(False)
    model.train()
    if stage == "stage1":
        model.embedder.eval()


class _Step(nn.Module):
    """Backbone + head forward returning per-element squared errors (what DDP wraps)."""

    def __init__(self, model: Evo1Model, stage: str) -> None:
        super().__init__()
        self.model = model
        self.stage = stage

    def forward(
        self, batch: dict[str, torch.Tensor], mask: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        m = self.model
        pixels = normalize_pixels(batch["pixels"].float()).to(m.embedder.model.vision_tower.dtype)
        grad = torch.no_grad() if self.stage == "stage1" else nullcontext()
        with grad:
            bb = m.embed(pixels, batch["input_ids"], batch["attention_mask"])
        out = m.flow_matching_loss(
            bb.fused_tokens.float(),
            batch["state"],
            batch["actions"],
            mask,
            context_mask=m.head_context_mask(bb),
            t=t,
            noise=noise,
        )
        flat = mask.reshape(mask.shape[0], -1)
        return ((out.pred_velocity.float() - out.target.float()) * flat) ** 2


def loss_mask(batch: dict[str, torch.Tensor], pad_mode: str) -> torch.Tensor:
    """[B, H, D] float: real action dims, and (pad_mode=mask) only steps inside the episode."""
    dims = batch["action_dims"][:, None, :]
    steps = (
        (~batch["action_is_pad"]).float()[:, :, None]
        if pad_mode == "mask"
        else torch.ones_like(batch["action_is_pad"], dtype=torch.float32)[:, :, None]
    )
    return dims * steps


def batch_hash(batch: dict[str, torch.Tensor]) -> str:
    """Short fingerprint of which windows (and augmentation seeds) a batch holds."""
    return hashlib.sha1(batch["sample"].numpy().tobytes()).hexdigest()[:12]


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Set up (all checks before compute), then `run()`."""

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None] = print) -> None:
        cfg.validate()
        self.cfg = cfg
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self._log = log
        self.out = Path(cfg.out).expanduser()
        self._setup()

    def log(self, text: str) -> None:
        if self.rank == 0:
            self._log(text)

    # ------------------------------------------------------------------ setup
    def _device(self) -> torch.device:
        want = self.cfg.device
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if want.startswith("cuda"):
            if not torch.cuda.is_available():
                raise TrainConfigError(f"device={self.cfg.device!r} but CUDA is not available here")
            if want == "cuda":
                want = f"cuda:{self.local_rank}"
        elif want != "cpu":
            raise TrainConfigError(f"device={want!r}; use auto, cpu, cuda or cuda:N")
        return torch.device(want)

    def _setup(self) -> None:
        cfg = self.cfg
        self.device = self._device()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        resume_from = ckio.latest_checkpoint(self.out) if cfg.resume else None
        if cfg.resume and resume_from is None:
            raise TrainConfigError(f"resume=true but {self.out / ckio.CHECKPOINTS_DIR} holds no checkpoint")
        if not cfg.resume and ckio.latest_checkpoint(self.out) is not None:
            raise TrainConfigError(
                f"{self.out} already holds a training run; resume it with resume=true or choose another --out"
            )
        scratch = self.out / ".build" / f"rank{self.rank}"  # per rank: no two processes write one file
        scratch.mkdir(parents=True, exist_ok=True)
        self._init_distributed()
        self.init = model_config_for(cfg, scratch)
        model_cfg = self.init.config
        # --- every dataset check, before any weight is built
        self.plan: DataPlan = resolve_datasets(
            cfg.datasets, model_cfg, cfg.validate_datasets, cfg.val_episodes
        )
        self.tokenizer = load_tokenizer(self.init.tokenizer_dir)
        prompts = PromptTokenizer(self.tokenizer, model_cfg)
        all_views = torch.ones(1, model_cfg.num_views, dtype=torch.bool)
        self.prompts = {}
        for task in self.plan.tasks:
            ids, mask = prompts.encode([task], all_views)
            self.prompts[task] = (ids[0], mask[0])
        # --- model
        self.model = build_initial_model(self.init, cfg.seed)
        self.model.to(self.device)
        if self.init.kind in ("project", "official"):
            from evo1_ros.model.checkpoints.pretrained import place_model

            place_model(self.model, self.device, "float32")
        set_stage(self.model, cfg.stage)
        if cfg.gradient_checkpointing and cfg.stage == "stage2":
            self._enable_checkpointing()
        self.step_module: nn.Module = _Step(self.model, cfg.stage)
        if self.world > 1:
            self.step_module = nn.parallel.DistributedDataParallel(
                self.step_module, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, cfg.weight_decay),
            lr=cfg.lr,
            betas=tuple(cfg.betas),
            eps=cfg.eps,
            **({"fused": True} if self.device.type == "cuda" else {}),
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps)
        )
        self.step = 0
        self.best_val = math.inf
        if resume_from is not None:
            self._load_resume(resume_from)
        self.order = SampleOrder(self.plan.num_train, cfg.seed)

    def _enable_checkpointing(self) -> None:
        """Activation checkpointing of the ViT, and of the LLM unless flash semantics are emulated.

        Under `attention_semantics: flash` the LLM runs inside MaskedQueryRows' forward-time hooks, which a
        backward-time recomputation would not see, so only the vision tower is checkpointed then.
        """
        vl = self.model.embedder.model
        parts = [vl.vision_tower]
        if self.model.config.attention_semantics != "flash":
            parts.append(vl.language_model)
        for part in parts:
            if hasattr(part, "activation_checkpointing_enable"):  # transformers >= 5.x name
                part.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                part.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if len(parts) == 1:
            self.log("gradient_checkpointing: vision tower only (the LLM runs under flash-semantics hooks)")

    def _init_distributed(self) -> None:
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group(backend=backend)
        if self.world > 1 and self.cfg.batch_size % self.world:
            raise TrainConfigError(
                f"batch_size {self.cfg.batch_size} is global and must divide by the {self.world} processes"
            )

    def _load_resume(self, folder: Path) -> None:
        from safetensors.torch import load_file

        state = torch.load(folder / ckio.TRAIN_STATE_NAME, map_location="cpu", weights_only=False)
        if state.get("stage") != self.cfg.stage:
            raise TrainConfigError(
                f"{folder} is a {state.get('stage')} checkpoint; this run is {self.cfg.stage}. "
                "Start stage 2 with init=<stage-1 output> in a new --out"
            )
        load_state_into(self.model, load_file(str(folder / "model.safetensors")), str(folder))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.best_val = float(state.get("best_val", math.inf))
        _set_rng_state(state["rng"])
        self.log(f"resuming from {folder} at step {self.step}")

    # ------------------------------------------------------------------ pieces
    def _loader(self, start: int, stop: int) -> DataLoader:
        cfg = self.cfg
        ds = WindowDataset(
            self.plan, self.model.config, self.prompts, "train", cfg.augmentation, cfg.frame_cache
        )
        sampler = ResumableBatchSampler(self.order, cfg.batch_size, start, stop, self.rank, self.world)
        return DataLoader(
            ds,
            batch_sampler=sampler,
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=2 if cfg.num_workers else None,
        )

    def _draws(self, step: int, local: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        """t [B] and noise [B, H, D] for this rank's slice of the global batch at `step`."""
        cfg = self.model.config
        gen = torch.Generator().manual_seed(
            int(np.random.SeedSequence([self.cfg.seed, step, 7]).generate_state(1)[0])
        )
        total = self.cfg.batch_size
        t = fm.sample_time(total, gen)
        noise = fm.sample_noise((total, cfg.horizon, cfg.per_action_dim), gen)
        return t[offset : offset + local], noise[offset : offset + local]

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _autocast(self) -> Any:
        if self.device.type == "cuda" and self.cfg.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> tuple[float, float, bool]:
        """One optimizer step; returns (global loss, grad norm, applied)."""
        cfg = self.cfg
        local = batch["state"].shape[0]
        t, noise = self._draws(step, local, self.rank * local)
        batch = self._to_device(batch)
        mask = loss_mask(batch, cfg.pad_mode)
        active = mask.sum().detach().float().cpu()
        torch.manual_seed(int(np.random.SeedSequence([cfg.seed, step, self.rank, 11]).generate_state(1)[0]))
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            sq = self.step_module(batch, mask, t.to(self.device), noise.to(self.device))
        if self.world > 1:
            active_all = active.clone()
            dist.all_reduce(active_all)
            n_active = float(active_all)
        else:
            n_active = float(active)
        loss = sq.sum() / n_active * self.world
        loss_value = loss.detach().float().cpu() / self.world
        if self.world > 1:
            dist.all_reduce(loss_value)
        value = float(loss_value)
        if not math.isfinite(value):
            self.optimizer.zero_grad(set_to_none=True)
            return value, float("nan"), False
        loss.backward()
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.grad_clip_norm > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm))
        else:
            norm = float(
                torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
            )
        self.optimizer.step()
        self.scheduler.step()
        return value, norm, True

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        """Mean flow-matching loss over fixed validation batches (fixed noise, no augmentation)."""
        cfg = self.cfg
        if self.plan.num_val == 0:
            return None
        ds = WindowDataset(self.plan, self.model.config, self.prompts, "val", False, cfg.frame_cache)
        order = SampleOrder(len(ds), cfg.seed + 1)
        total_sq, total_n = 0.0, 0.0
        was_training = self.model.training
        self.model.eval()
        step_fn = _Step(self.model, "stage1")
        for b in range(cfg.val_batches):
            items = [
                ds[(order.index(b * cfg.batch_size + i), 0)] for i in range(min(cfg.batch_size, len(ds)))
            ]
            batch = self._to_device({k: torch.stack([it[k] for it in items]) for k in items[0]})
            mask = loss_mask(batch, cfg.pad_mode)
            gen = torch.Generator().manual_seed(cfg.seed + 1000 + b)
            n = batch["state"].shape[0]
            t = fm.sample_time(n, gen).to(self.device)
            noise = fm.sample_noise(tuple(batch["actions"].shape), gen).to(self.device)
            with self._autocast():
                sq = step_fn(batch, mask, t, noise)
            total_sq += float(sq.sum())
            total_n += float(mask.sum())
        if was_training:
            set_stage(self.model, cfg.stage)
        return total_sq / max(total_n, 1.0)

    def training_info(self) -> dict[str, Any]:
        return {
            "produced_by": "evo1 train",
            "fps": self.plan.fps,
            "stage": self.cfg.stage,
            "step": self.step,
            "pad_mode": self.cfg.pad_mode,
            "arm_keys": sorted(self.plan.stats),
            "datasets": [d.describe() for d in self.plan.datasets],
            "tasks": self.plan.tasks,
        }

    def save(self, final: bool = False) -> Path:
        """Checkpoint at the current step (rank 0 writes; everyone waits)."""
        folder = ckio.step_dir(self.out, self.step)
        if self.rank == 0:
            state = {
                "step": self.step,
                "stage": self.cfg.stage,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": _rng_state(),
                "best_val": self.best_val,
                "world_size": self.world,
                "config": self.cfg.to_dict(),
            }
            ckio.save_checkpoint(
                folder, self.model, self.tokenizer, self.plan.stats, self.training_info(), state
            )
            ckio.prune_checkpoints(self.out, self.cfg.keep_checkpoints)
            if final:
                ckio.export_final(folder, self.out)
        if self.world > 1:
            dist.barrier()
        return folder

    # ------------------------------------------------------------------ loop
    def run(self) -> TrainResult:
        cfg = self.cfg
        stop = cfg.stop_at_step or cfg.steps
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            import yaml

            (self.out / "train_config.yaml").write_text(
                yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8"
            )
        runlog = RunLog(self.out, cfg.tensorboard, self.step) if self.rank == 0 else None
        if runlog is not None and runlog.tb_note:
            self.log(runlog.tb_note)
        self.log(
            f"{cfg.stage}: {self.plan.num_train} training windows from {len(self.plan.datasets)} dataset(s) "
            f"at {self.plan.fps} fps, {sum(p.numel() for p in self.model.parameters() if p.requires_grad):,} "
            f"trainable parameters, device {self.device}, {self.world} process(es)"
        )
        if self.init.kind == "random" and cfg.model.get("preset", "full") == "full":
            self.log("init: random weights everywhere (give --vlm DIR for the InternVL3-1B backbone)")
        bar = None
        if self.rank == 0 and cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=stop, initial=self.step, unit="step", dynamic_ncols=True)
        start_step, t0 = self.step, time.perf_counter()
        last_loss, bad, window_t, window_n = float("nan"), 0, time.perf_counter(), 0
        try:
            for batch in self._loader(self.step, stop):
                h = batch_hash(batch)
                loss, norm, applied = self.train_step(batch, self.step)
                if not applied:
                    bad += 1
                    self.log(f"step {self.step}: non-finite loss, batch skipped ({bad} in a row)")
                    if bad >= MAX_BAD_STEPS:
                        raise FloatingPointError(
                            f"{bad} non-finite losses in a row at step {self.step}; stopping"
                        )
                else:
                    bad, last_loss = 0, loss
                self.step += 1
                window_n += cfg.batch_size
                val = None
                if self.plan.num_val and (self.step % cfg.val_interval == 0 or self.step == stop):
                    val = self.validation_loss()
                if self.step % cfg.log_interval == 0 or self.step == stop or val is not None:
                    now = time.perf_counter()
                    sps = window_n / max(now - window_t, 1e-9)
                    window_t, window_n = now, 0
                    lr = self.optimizer.param_groups[0]["lr"]
                    if runlog is not None:
                        runlog.write(
                            {
                                "step": self.step,
                                "loss": loss,
                                "lr": lr,
                                "grad_norm": norm,
                                "samples_per_s": round(sps, 3),
                                "elapsed_s": round(now - t0, 3),
                                "val_loss": "" if val is None else val,
                                "batch_hash": h,
                            }
                        )
                    if bar is not None:
                        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", sps=f"{sps:.1f}")
                if val is not None and val < self.best_val:
                    self.best_val = val
                    if self.rank == 0:
                        ckio.save_checkpoint(
                            self.out / "best",
                            self.model,
                            self.tokenizer,
                            self.plan.stats,
                            self.training_info(),
                        )
                if bar is not None:
                    bar.update(1)
                if self.step % cfg.ckpt_interval == 0 and self.step < stop:
                    self.save()
        except KeyboardInterrupt:
            self.log(f"interrupted at step {self.step}: saving a checkpoint to resume from")
            self.save()
            raise
        finally:
            if bar is not None:
                bar.close()
            if runlog is not None:
                runlog.close()
        folder = self.save(final=self.step == cfg.steps)
        seconds = time.perf_counter() - t0
        done = self.step - start_step
        if self.rank == 0:
            plot_loss(self.out / CSV_NAME, self.out / PNG_NAME)
        result = TrainResult(
            steps=self.step,
            final_loss=last_loss,
            samples_per_s=done * cfg.batch_size / max(seconds, 1e-9),
            checkpoint=self.out if self.step == cfg.steps else folder,
            seconds=seconds,
        )
        self.log(result.summary())
        return result

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    """Set up and run one training job (the function `evo1 train` calls)."""
    trainer = Trainer(cfg, log)
    try:
        return trainer.run()
    finally:
        trainer.close()

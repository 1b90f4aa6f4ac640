"""`Evo1Policy`: camera images + robot state + task → an action chunk in robot units.

This is the boundary the ROS node talks to: numpy in, numpy out, every input validated with an error
that says what to fix. It normalises the state, builds the prompt, runs the backbone once and the head
for `num_steps` Euler steps, then denormalises the real action dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints.official import load_official_checkpoint
from .checkpoints.pretrained import load_pretrained, save_pretrained
from .configuration import Evo1Config
from .modeling.cuda_graph_sampler import CudaGraphHeadSampler
from .modeling.evo1 import Evo1Model
from .processing.images import preprocess_views
from .processing.normalization import NormStats
from .processing.prompt import PromptTokenizer
from .processing.tokenizer import load_tokenizer

Generator = int | torch.Generator | None


def _make_generator(generator: Generator) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        g = torch.Generator(device="cpu")
        g.manual_seed(int(generator))
        return g
    raise TypeError(
        f"generator must be an int seed, a torch.Generator or None, got {type(generator).__name__}"
    )


class Evo1Policy:
    """Evo-1 inference in robot units. Deterministic for a given seed (noise is drawn on the CPU)."""

    def __init__(
        self, model: Evo1Model, tokenizer: Any, norm_stats: NormStats, cuda_graph: bool = False
    ) -> None:
        """cuda_graph: replay the head's Euler loop from a captured CUDA graph (model on a GPU only)."""
        if not isinstance(norm_stats, NormStats):
            raise TypeError("norm_stats must be a NormStats (load it with NormStats.load(path))")
        config = model.config
        if norm_stats.state_dim > config.state_dim:
            raise ValueError(
                f"norm stats have {norm_stats.state_dim} state dims; the model takes {config.state_dim}"
            )
        if norm_stats.action_dim > config.per_action_dim:
            raise ValueError(
                f"norm stats have {norm_stats.action_dim} action dims; the model predicts {config.per_action_dim}"
            )
        self.model = model.eval()
        self.config: Evo1Config = config
        self.tokenizer = tokenizer
        self.prompts = PromptTokenizer(tokenizer, config)
        self.norm_stats = norm_stats
        if cuda_graph and self.device.type != "cuda":
            raise ValueError(f"cuda_graph=True needs the model on a CUDA device, it is on {self.device}")
        self.cuda_graph = cuda_graph
        self._samplers: dict[tuple[int, int, int], CudaGraphHeadSampler] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        tokenizer_path: str | Path | None = None,
        norm_stats: NormStats | None = None,
        cuda_graph: bool = False,
        **overrides: Any,
    ) -> Evo1Policy:
        """Load a project checkpoint (`save_pretrained` layout); device/dtype/... may be overridden."""
        loaded = load_pretrained(directory, **overrides)
        return cls._assemble(
            loaded.model,
            loaded.tokenizer_dir,
            loaded.norm_stats,
            tokenizer_path,
            norm_stats,
            directory,
            cuda_graph,
        )

    @classmethod
    def from_official(
        cls,
        directory: str | Path,
        tokenizer_path: str | Path | None = None,
        norm_stats: NormStats | None = None,
        device: str | None = None,
        dtype: str | None = None,
        cuda_graph: bool = False,
        **overrides: Any,
    ) -> Evo1Policy:
        """Import an official Evo-1 checkpoint directory (see checkpoints/official.py)."""
        if device is not None:
            overrides["device"] = device
        if dtype is not None:
            overrides["dtype"] = dtype
        imported = load_official_checkpoint(directory, tokenizer_path=tokenizer_path, **overrides)
        return cls._assemble(
            imported.model,
            imported.tokenizer_dir,
            imported.norm_stats,
            tokenizer_path,
            norm_stats,
            directory,
            cuda_graph,
        )

    @classmethod
    def _assemble(
        cls,
        model: Evo1Model,
        found_tokenizer: Path | None,
        found_stats: NormStats | None,
        tokenizer_path: str | Path | None,
        norm_stats: NormStats | None,
        directory: str | Path,
        cuda_graph: bool,
    ) -> Evo1Policy:
        stats = norm_stats if norm_stats is not None else found_stats
        if stats is None:
            raise FileNotFoundError(f"no norm_stats.json in {directory}; pass norm_stats= to get robot units")
        source = tokenizer_path if tokenizer_path is not None else found_tokenizer
        if source is None:
            raise FileNotFoundError(
                f"no tokenizer files in {directory} or {Path(directory) / 'tokenizer'}; pass tokenizer_path= "
                "(the InternVL3-1B tokenizer directory)"
            )
        return cls(model, load_tokenizer(source), stats, cuda_graph=cuda_graph)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Project checkpoint: weights, config, norm stats and tokenizer in one directory."""
        return save_pretrained(self.model, directory, norm_stats=self.norm_stats, tokenizer=self.tokenizer)

    # ------------------------------------------------------------------ inference
    @property
    def device(self) -> torch.device:
        return self.model.action_head.seq_pool_proj.weight.device

    def predict(
        self,
        images: Sequence[np.ndarray | None],
        image_mask: Sequence[bool],
        state: np.ndarray | Sequence[float],
        task: str,
        action_mask: np.ndarray | Sequence[bool] | None = None,
        num_steps: int | None = None,
        generator: Generator = None,
    ) -> np.ndarray:
        """One observation → [horizon, action_dim] actions in robot units (float32).

        images: up to `num_views` HxWx3 uint8 RGB arrays (any size; None where image_mask is False).
        """
        out = self.predict_batch(
            [images],
            [image_mask],
            np.asarray(state)[None],
            [task],
            action_mask=action_mask,
            num_steps=num_steps,
            generator=generator,
        )
        return out[0]

    def predict_batch(
        self,
        images: Sequence[Sequence[np.ndarray | None]],
        image_masks: Sequence[Sequence[bool]],
        states: np.ndarray,
        tasks: Sequence[str],
        action_mask: np.ndarray | Sequence[bool] | None = None,
        num_steps: int | None = None,
        generator: Generator = None,
    ) -> np.ndarray:
        """B observations → [B, horizon, action_dim] actions in robot units (one backbone pass for all)."""
        cfg = self.config
        batch = len(images)
        if batch == 0:
            raise ValueError("predict_batch needs at least one observation")
        if not (len(image_masks) == len(tasks) == batch):
            raise ValueError(f"got {batch} image sets, {len(image_masks)} image masks and {len(tasks)} tasks")
        for task in tasks:
            if not isinstance(task, str):
                raise TypeError(f"task must be a str, got {type(task).__name__}")
        steps = cfg.num_inference_steps if num_steps is None else num_steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
        gen = _make_generator(generator)

        masks = self._view_masks(images, image_masks)
        pixel_values = torch.stack(
            [
                preprocess_views(self._pad_views(views), m.tolist(), cfg.image_size, self.device)
                for views, m in zip(images, masks, strict=True)
            ]
        )
        input_ids, attention_mask = self.prompts.encode(list(tasks), masks)
        state = self._normalized_state(states, batch)
        amask = self._action_mask(action_mask)

        param_dtype = self.model.action_head.dtype
        pixel_values = pixel_values.to(self.device, self.model.embedder.model.vision_tower.dtype)
        x0 = torch.rand(batch, cfg.action_dim, generator=gen) * 2 - 1
        state_t = torch.from_numpy(state).to(self.device, param_dtype)
        amask_t = torch.from_numpy(amask).to(self.device)
        with torch.no_grad():
            backbone = self.model.embed(
                pixel_values, input_ids.to(self.device), attention_mask.to(self.device)
            )
            fused = backbone.fused_tokens.float()
            context_mask = self.model.head_context_mask(backbone)
            if self.cuda_graph:
                actions = self._sampler(batch, fused.shape[1], int(steps))(
                    fused, state_t, amask_t, x0.to(self.device), context_mask
                )
            else:
                actions = self.model.sample_actions(
                    fused, state_t, amask_t, num_steps=int(steps), x0=x0, context_mask=context_mask
                ).actions
        chunk = actions.float().cpu().numpy().reshape(batch, cfg.horizon, cfg.per_action_dim)
        if not np.all(np.isfinite(chunk[..., : self.norm_stats.action_dim])):
            raise FloatingPointError("the model produced NaN/inf actions; check the checkpoint's weights")
        return self.norm_stats.denormalize_action(chunk)

    def _sampler(self, batch: int, length: int, steps: int) -> CudaGraphHeadSampler:
        key = (batch, length, steps)
        if key not in self._samplers:
            self._samplers[key] = CudaGraphHeadSampler(self.model, batch, length, steps)
        return self._samplers[key]

    # ------------------------------------------------------------------ validation helpers
    def _pad_views(self, views: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
        return list(views) + [None] * (self.config.num_views - len(views))

    def _view_masks(
        self, images: Sequence[Sequence[np.ndarray | None]], image_masks: Sequence[Sequence[bool]]
    ) -> torch.Tensor:
        v = self.config.num_views
        rows = []
        for i, (views, mask) in enumerate(zip(images, image_masks, strict=True)):
            if isinstance(views, np.ndarray):
                raise TypeError(f"images[{i}] must be a list of per-view arrays, not one array")
            if not 1 <= len(views) <= v:
                raise ValueError(f"sample {i}: give 1 to {v} views, got {len(views)}")
            mask = [bool(x) for x in np.asarray(mask).reshape(-1)]
            if len(mask) != len(views):
                raise ValueError(f"sample {i}: image_mask has {len(mask)} entries for {len(views)} views")
            if not any(mask):
                raise ValueError(f"sample {i}: image_mask has no present view; at least one camera is needed")
            rows.append(mask + [False] * (v - len(mask)))
        return torch.tensor(rows, dtype=torch.bool)

    def _normalized_state(self, states: np.ndarray, batch: int) -> np.ndarray:
        s = np.asarray(states)
        if (
            s.dtype == object
            or not np.issubdtype(s.dtype, np.number)
            or np.issubdtype(s.dtype, np.complexfloating)
        ):
            raise TypeError(f"state must be numeric (joint positions), got dtype {s.dtype}")
        if s.shape != (batch, self.norm_stats.state_dim):
            raise ValueError(
                f"state must have {self.norm_stats.state_dim} values per sample (as in norm_stats), "
                f"got shape {s.shape[1:] if s.ndim > 1 else s.shape}"
            )
        if not np.all(np.isfinite(s)):
            raise ValueError("state contains NaN or inf; refusing to predict from a broken joint reading")
        return self.norm_stats.normalize_state(s, pad_to=self.config.state_dim)

    def _action_mask(self, action_mask: np.ndarray | Sequence[bool] | None) -> np.ndarray:
        d = self.config.per_action_dim
        if action_mask is None:
            return self.norm_stats.action_mask(d)
        m = np.asarray(action_mask).reshape(-1).astype(bool)
        if m.shape[0] == self.norm_stats.action_dim:
            m = np.concatenate([m, np.zeros(d - m.shape[0], dtype=bool)])
        if m.shape[0] != d:
            raise ValueError(
                f"action_mask must have {self.norm_stats.action_dim} or {d} entries, got {m.shape[0]}"
            )
        if not m.any():
            raise ValueError("action_mask selects no action dimension")
        return m

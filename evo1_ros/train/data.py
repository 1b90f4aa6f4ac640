"""Training data: datasets checked before any compute, merged stats, windows, a resumable sample order.

Each dataset is read through `recording.dataset.reader.LeRobotReader` (the reader users have). A sample is the
window at one frame: the state there, the next `horizon` actions (past the episode end: the last action
repeated, the official padding, with `action_is_pad` available to leave those steps out of the loss), the
task prompt and one picture per mapped camera. Video decoding happens in `WindowDataset.__getitem__`, i.e.
in the DataLoader workers. The sample order is a pure function of (seed, step), so resuming at step N or
running on several processes sees exactly the samples a single uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from evo1_ros.model import Evo1Config, NormStats
from evo1_ros.model.processing.images import to_uint8_tile
from evo1_ros.model.processing.prompt import mask_absent_views
from recording.dataset.errors import DatasetError
from recording.dataset.features import ACTION_KEY, CAMERA_PREFIX, STATE_KEY
from recording.dataset.reader import LeRobotReader

from .augment import augment_view
from .config import VIEW_NAMES, DatasetEntry, TrainConfigError


@dataclass
class ResolvedDataset:
    """A dataset that passed every check, with its camera for each model view (None = masked view)."""

    entry: DatasetEntry
    reader: LeRobotReader
    views: list[str | None]
    train_frames: np.ndarray
    val_frames: np.ndarray

    @property
    def name(self) -> str:
        return Path(self.entry.path).name

    def describe(self) -> dict[str, Any]:
        r = self.reader
        return {
            "path": str(Path(self.entry.path).resolve()),
            "embodiment": self.entry.embodiment,
            "fps": r.fps,
            "episodes": r.num_episodes,
            "frames": r.num_frames,
            "state_names": list(r.features.state_names),
            "action_names": list(r.features.action_names),
            "views": self.views,
        }


@dataclass
class DataPlan:
    """All datasets of a run, their per-embodiment stats and the shared fps."""

    datasets: list[ResolvedDataset]
    stats: dict[str, NormStats]
    fps: int
    tasks: list[str] = field(default_factory=list)

    @property
    def num_train(self) -> int:
        return sum(len(d.train_frames) for d in self.datasets)

    @property
    def num_val(self) -> int:
        return sum(len(d.val_frames) for d in self.datasets)


def _camera_key(name: str) -> str:
    return name if name.startswith(CAMERA_PREFIX) else CAMERA_PREFIX + name


def _views_for(entry: DatasetEntry, reader: LeRobotReader, num_views: int) -> list[str | None]:
    cameras = reader.camera_keys
    if not cameras:
        raise TrainConfigError(f"dataset {entry.path} has no camera; Evo-1 needs at least one view")
    if entry.view_map is None:
        if len(cameras) > num_views:
            raise TrainConfigError(
                f"dataset {entry.path} has {len(cameras)} cameras {cameras}, the model takes {num_views}; "
                "choose them with view_map"
            )
        return cameras + [None] * (num_views - len(cameras))
    views: list[str | None] = []
    for view in VIEW_NAMES[:num_views]:
        cam = entry.view_map.get(view)
        if cam is None:
            views.append(None)
            continue
        key = _camera_key(str(cam))
        if key not in cameras:
            raise TrainConfigError(
                f"dataset {entry.path}: view_map {view} -> {cam!r}, but the dataset's cameras are {cameras}"
            )
        views.append(key)
    extra = sorted(set(entry.view_map) - set(VIEW_NAMES[:num_views]))
    if extra:
        raise TrainConfigError(f"dataset {entry.path}: view_map has {extra}; the model has {num_views} views")
    if all(v is None for v in views):
        raise TrainConfigError(f"dataset {entry.path}: view_map maps no camera; map at least image_1")
    return views


def _validate(path: Path, mode: str) -> None:
    if mode == "off":
        return
    from recording.dataset.validator import validate_dataset

    report = validate_dataset(path, decode_videos=mode == "full")
    if not report.ok:
        more = f" (+{len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        raise TrainConfigError(
            f"dataset {path} fails validation: {report.problems[0]}{more}; run `evo1 dataset validate {path}`"
        )


def _stats_of(reader: LeRobotReader, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Global min of per-episode mins / max of maxes (official `main`, docs/evo1_checkpoints.md §3)."""
    lo = np.min([np.asarray(e["stats"][key]["min"], dtype=np.float64) for e in reader.episodes_stats], axis=0)
    hi = np.max([np.asarray(e["stats"][key]["max"], dtype=np.float64) for e in reader.episodes_stats], axis=0)
    return lo, hi


def resolve_datasets(
    entries: list[DatasetEntry], model: Evo1Config, validate: str = "fast", val_episodes: int = 0
) -> DataPlan:
    """Open and check every dataset; any problem raises TrainConfigError (one line) before compute."""
    resolved: list[ResolvedDataset] = []
    for entry in entries:
        path = Path(entry.path).expanduser()
        if not (path / "meta" / "info.json").is_file():
            what = "not found" if not path.exists() else "is not a LeRobot dataset (no meta/info.json)"
            raise TrainConfigError(f"dataset path {what}: {path}")
        _validate(path, validate)
        try:
            reader = LeRobotReader(path)
        except (DatasetError, OSError, ValueError, KeyError) as e:
            raise TrainConfigError(f"dataset {path} cannot be read: {e}") from None
        s_dim, a_dim = len(reader.features.state_names), len(reader.features.action_names)
        if a_dim > model.per_action_dim:
            raise TrainConfigError(
                f"dataset {path} has {a_dim} action dims; Evo-1 predicts at most {model.per_action_dim}"
            )
        if s_dim > model.state_dim:
            raise TrainConfigError(
                f"dataset {path} has {s_dim} state dims; the model's state_dim is {model.state_dim}"
            )
        if reader.num_frames == 0:
            raise TrainConfigError(f"dataset {path} has no frames")
        views = _views_for(DatasetEntry(str(path), entry.embodiment, entry.view_map), reader, model.num_views)
        if val_episodes and val_episodes >= reader.num_episodes:
            raise TrainConfigError(
                f"dataset {path}: val_episodes={val_episodes} leaves no training episode "
                f"(it has {reader.num_episodes})"
            )
        split = (
            reader.episode_bounds(reader.num_episodes - val_episodes)[0]
            if val_episodes
            else reader.num_frames
        )
        resolved.append(
            ResolvedDataset(
                DatasetEntry(str(path), entry.embodiment, entry.view_map),
                reader,
                views,
                np.arange(0, split, dtype=np.int64),
                np.arange(split, reader.num_frames, dtype=np.int64),
            )
        )
    fps = {d.reader.fps for d in resolved}
    if len(fps) > 1:
        raise TrainConfigError(
            f"datasets have different fps {sorted(fps)}; the checkpoint carries one control rate — "
            "train datasets of one fps together"
        )
    stats: dict[str, NormStats] = {}
    by_arm: dict[str, list[ResolvedDataset]] = {}
    for d in resolved:
        by_arm.setdefault(d.entry.embodiment, []).append(d)
    for arm, group in by_arm.items():
        dims = {(len(d.reader.features.state_names), len(d.reader.features.action_names)) for d in group}
        if len(dims) > 1:
            raise TrainConfigError(
                f"embodiment {arm!r}: its datasets differ in (state, action) dims {sorted(dims)}; "
                "give them different `embodiment` names"
            )
        s = [_stats_of(d.reader, STATE_KEY) for d in group]
        a = [_stats_of(d.reader, ACTION_KEY) for d in group]
        stats[arm] = NormStats(
            state_min=np.min([x[0] for x in s], axis=0),
            state_max=np.max([x[1] for x in s], axis=0),
            action_min=np.min([x[0] for x in a], axis=0),
            action_max=np.max([x[1] for x in a], axis=0),
        )
    tasks = sorted({t for d in resolved for t in d.reader.tasks.values()})
    return DataPlan(resolved, stats, fps.pop(), tasks)


# ---------------------------------------------------------------------------------------------- order
def sample_seed(seed: int, position: int) -> int:
    """Augmentation seed of the sample at global stream position `position` (independent of workers)."""
    return int(np.random.SeedSequence([seed, position]).generate_state(1)[0])


class SampleOrder:
    """Global stream of samples: epoch k is a seeded permutation of the training windows."""

    def __init__(self, size: int, seed: int) -> None:
        if size <= 0:
            raise TrainConfigError("no training windows (are all episodes held out for validation?)")
        self.size = size
        self.seed = seed
        self._perm: tuple[int, np.ndarray] | None = None

    def index(self, position: int) -> int:
        epoch, offset = divmod(position, self.size)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.size))
        return int(self._perm[1][offset])


class ResumableBatchSampler(torch.utils.data.Sampler):
    """Yields, for steps start..stop-1, this rank's slice of the global batch as (window, aug seed) pairs."""

    def __init__(
        self, order: SampleOrder, global_batch: int, start: int, stop: int, rank: int = 0, world: int = 1
    ) -> None:
        if global_batch % world:
            raise TrainConfigError(f"batch_size {global_batch} is not divisible by {world} processes")
        self.order, self.global_batch = order, global_batch
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self.local = global_batch // world

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def batch(self, step: int) -> list[tuple[int, int]]:
        base = step * self.global_batch + self.rank * self.local
        return [
            (self.order.index(p), sample_seed(self.order.seed, p)) for p in range(base, base + self.local)
        ]

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield self.batch(step)


# ---------------------------------------------------------------------------------------------- windows
class WindowDataset(Dataset):
    """(window index, aug seed) → one training sample as tensors; decodes video (in the workers)."""

    def __init__(
        self,
        plan: DataPlan,
        model: Evo1Config,
        prompts: dict[str, tuple[torch.Tensor, torch.Tensor]],
        split: str = "train",
        augmentation: bool = True,
        frame_cache: bool = False,
    ) -> None:
        self.plan, self.model = plan, model
        self.prompts = prompts
        self.augmentation = augmentation
        self.frame_cache = frame_cache
        self._cache: dict[tuple[int, int, str], np.ndarray] = {}
        ids, frames = [], []
        for i, d in enumerate(plan.datasets):
            f = d.train_frames if split == "train" else d.val_frames
            ids.append(np.full(len(f), i, dtype=np.int64))
            frames.append(f)
        self.ds_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        self.frames = np.concatenate(frames) if frames else np.zeros(0, np.int64)
        self.context_id = model.img_context_token_id

    def __len__(self) -> int:
        return len(self.frames)

    def _image(
        self, ds: int, reader: LeRobotReader, ep: int, frame_index: int, ts: float, cam: str
    ) -> np.ndarray:
        if not self.frame_cache:
            return reader.decode_video(ep, cam, [ts])[0]
        key = (ds, ep, cam)
        if key not in self._cache:
            stamps = reader.episode_columns(ep)["timestamp"]
            self._cache[key] = reader.decode_video(ep, cam, stamps)
        return self._cache[key][frame_index]

    def __getitem__(self, item: tuple[int, int] | int) -> dict[str, torch.Tensor]:
        index, seed = item if isinstance(item, tuple) else (int(item), 0)
        ds = int(self.ds_ids[index])
        d = self.plan.datasets[ds]
        cfg = self.model
        w = d.reader.window(int(self.frames[index]), cfg.horizon, decode_images=False)
        gen = torch.Generator().manual_seed(int(seed))
        size = cfg.image_size
        tiles, present = [], []
        for cam in d.views:
            if cam is None:
                tiles.append(torch.zeros(3, size, size))
                present.append(False)
                continue
            img = self._image(ds, d.reader, w.episode_index, w.frame_index, w.timestamp, cam)
            t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
            tiles.append(augment_view(t, size, gen) if self.augmentation else to_uint8_tile(t, size))
            present.append(True)
        stats = self.plan.stats[d.entry.embodiment]
        state = stats.normalize_state(w.state, pad_to=cfg.state_dim)
        actions = stats.normalize_action(w.actions, pad_to=cfg.per_action_dim)
        dims = np.zeros(cfg.per_action_dim, dtype=np.float32)
        dims[: stats.action_dim] = 1.0
        view_mask = torch.tensor(present, dtype=torch.bool)
        ids, base_mask = self.prompts[w.task]
        attn = mask_absent_views(ids, base_mask, view_mask, self.context_id, cfg.image_tokens_per_view)
        return {
            "pixels": torch.stack(tiles).to(torch.uint8),
            "image_mask": view_mask,
            "input_ids": ids,
            "attention_mask": attn,
            "state": torch.from_numpy(state),
            "actions": torch.from_numpy(actions),
            "action_dims": torch.from_numpy(dims),
            "action_is_pad": torch.from_numpy(np.asarray(w.action_is_pad, dtype=bool)),
            "sample": torch.tensor([ds, int(self.frames[index]), int(seed) & 0x7FFFFFFF], dtype=torch.int64),
        }

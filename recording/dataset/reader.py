"""Read a LeRobot v2.1 dataset: metadata, frames and training windows by global index.

Numeric columns of all episodes are loaded once (they are small); video frames are decoded on
demand by timestamp, as LeRobot does. A window is what a chunked policy trains on: the state (and
images) at frame t and the actions t .. t+H-1, with the steps past the episode end padded by the
episode's last action and flagged in ``action_is_pad``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recording.dataset import layout
from recording.dataset.atomic_io import read_json, read_jsonl
from recording.dataset.errors import DatasetError
from recording.dataset.features import ACTION_KEY, STATE_KEY, DatasetFeatures
from recording.dataset.parquet_io import column_features, column_to_numpy, read_episode_table
from recording.dataset.video_decode import decode_at


@dataclass(frozen=True)
class Frame:
    """One frame of the dataset."""

    index: int
    episode_index: int
    frame_index: int
    timestamp: float
    task: str
    state: np.ndarray  # (S,) float32
    action: np.ndarray  # (A,) float32
    images: dict[str, np.ndarray]  # camera key -> HxWx3 uint8 (empty unless decoded)
    extras: dict[str, np.ndarray]


@dataclass(frozen=True)
class Window:
    """State/images at frame ``index`` and the action chunk that follows it."""

    index: int
    episode_index: int
    frame_index: int
    timestamp: float
    task: str
    state: np.ndarray  # (S,)
    actions: np.ndarray  # (H, A)
    action_is_pad: np.ndarray  # (H,) bool, True past the episode end
    images: dict[str, np.ndarray]


class LeRobotReader:
    """Random access to a LeRobot v2.1 dataset on disk."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.info: dict[str, Any] = read_json(self.root / layout.INFO_PATH)
        if not isinstance(self.info, dict) or self.info.get("codebase_version") != layout.CODEBASE_VERSION:
            raise DatasetError(
                f"{self.root / layout.INFO_PATH}: codebase_version is not {layout.CODEBASE_VERSION}"
            )
        try:
            self.features = DatasetFeatures.from_info_features(self.info["features"])
            self.fps = int(self.info["fps"])
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"{self.root / layout.INFO_PATH}: {e}") from None
        tasks = read_jsonl(self.root / layout.TASKS_PATH)
        self.tasks: dict[int, str] = {int(t["task_index"]): str(t["task"]) for t in tasks}
        self.episodes: list[dict[str, Any]] = read_jsonl(self.root / layout.EPISODES_PATH)
        self.episodes_stats: list[dict[str, Any]] = read_jsonl(self.root / layout.EPISODES_STATS_PATH)
        lengths = np.array([int(e["length"]) for e in self.episodes], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._columns = self._load_columns()

    def _load_columns(self) -> dict[str, np.ndarray]:
        cols = column_features(self.info["features"])
        parts: dict[str, list[np.ndarray]] = {k: [] for k in cols}
        for ep in range(self.num_episodes):
            path = self.data_path(ep)
            table = read_episode_table(path)
            if table.num_rows != self.episode_length(ep):
                raise DatasetError(
                    f"{path}: {table.num_rows} rows, episodes.jsonl says {self.episode_length(ep)}"
                )
            for k in cols:
                if k not in table.column_names:
                    raise DatasetError(f"{path}: column {k!r} missing")
                try:
                    parts[k].append(column_to_numpy(table, k))
                except ValueError as e:
                    raise DatasetError(f"{path}: {e}") from None
        return {k: (np.concatenate(v) if v else np.zeros((0,))) for k, v in parts.items()}

    # ------------------------------------------------------------------ metadata
    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(self._starts[-1])

    @property
    def camera_keys(self) -> list[str]:
        return self.features.camera_keys

    def __len__(self) -> int:
        return self.num_frames

    def episode_length(self, episode_index: int) -> int:
        return int(self.episodes[episode_index]["length"])

    def episode_bounds(self, episode_index: int) -> tuple[int, int]:
        """Global [start, stop) frame indices of an episode."""
        if not 0 <= episode_index < self.num_episodes:
            raise IndexError(f"episode {episode_index} out of range 0..{self.num_episodes - 1}")
        return int(self._starts[episode_index]), int(self._starts[episode_index + 1])

    def data_path(self, episode_index: int) -> Path:
        return self.root / self.info["data_path"].format(
            episode_chunk=episode_index // int(self.info["chunks_size"]), episode_index=episode_index
        )

    def video_path(self, episode_index: int, camera: str) -> Path:
        key = self.features.camera(camera).key
        return self.root / self.info["video_path"].format(
            episode_chunk=episode_index // int(self.info["chunks_size"]),
            video_key=key,
            episode_index=episode_index,
        )

    def column(self, name: str) -> np.ndarray:
        """A whole numeric column over all episodes, in global index order."""
        return self._columns[name]

    def episode_columns(self, episode_index: int) -> dict[str, np.ndarray]:
        """All numeric columns of one episode."""
        a, b = self.episode_bounds(episode_index)
        return {k: v[a:b] for k, v in self._columns.items()}

    # ------------------------------------------------------------------ access
    def locate(self, index: int) -> tuple[int, int]:
        """(episode_index, frame_index) of a global frame index."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} out of range 0..{self.num_frames - 1}")
        ep = int(np.searchsorted(self._starts, index, side="right") - 1)
        return ep, index - int(self._starts[ep])

    def decode_video(
        self, episode_index: int, camera: str, timestamps: list[float] | np.ndarray
    ) -> np.ndarray:
        """Frames of one camera at the given episode timestamps (seconds), (N, H, W, 3) uint8."""
        return decode_at(self.video_path(episode_index, camera), list(map(float, timestamps)))

    def _images_at(self, ep: int, timestamp: float) -> dict[str, np.ndarray]:
        return {key: self.decode_video(ep, key, [timestamp])[0] for key in self.camera_keys}

    def frame(self, index: int, decode_images: bool = True) -> Frame:
        """One frame by global index; images decoded from the mp4s at its timestamp."""
        ep, fi = self.locate(index)
        c = self._columns
        ts = float(c["timestamp"][index])
        return Frame(
            index=index,
            episode_index=ep,
            frame_index=fi,
            timestamp=ts,
            task=self.tasks.get(int(c["task_index"][index]), ""),
            state=np.asarray(c[STATE_KEY][index]),
            action=np.asarray(c[ACTION_KEY][index]),
            images=self._images_at(ep, ts) if decode_images else {},
            extras={ex.key: np.asarray(c[ex.key][index]) for ex in self.features.extras},
        )

    def window(self, index: int, horizon: int, decode_images: bool = True) -> Window:
        """State at ``index`` and actions ``index .. index+horizon-1`` of the same episode, padded."""
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        f = self.frame(index, decode_images)
        _, stop = self.episode_bounds(f.episode_index)
        want = np.arange(index, index + horizon)
        is_pad = want >= stop
        take = np.minimum(want, stop - 1)
        return Window(
            index=index,
            episode_index=f.episode_index,
            frame_index=f.frame_index,
            timestamp=f.timestamp,
            task=f.task,
            state=f.state,
            actions=np.asarray(self._columns[ACTION_KEY][take]),
            action_is_pad=is_pad,
            images=f.images,
        )

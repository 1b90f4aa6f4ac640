"""LeRobot v2.1 dataset writer with streaming video and atomic episodes.

Life of an episode: ``start_episode(task)`` opens one background encoder per camera writing into
``<root>/.staging/episode_NNNNNN/``; ``add_frame`` validates the frame, keeps state/action in memory
and hands the images to the encoders (never waits for them); ``save_episode`` finishes the videos,
writes the parquet, fsyncs, renames the files into ``data/`` and ``videos/``, appends the JSONL lines
and finally replaces ``meta/info.json`` atomically. info.json is the commit point: reopening a
dataset rolls back anything after the last committed episode and removes the staging area, so a crash
loses at most the episode being recorded or saved. Timestamps are ideal: ``frame_index / fps``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recording.dataset import layout
from recording.dataset.atomic_io import (
    append_durable,
    fsync_dir,
    jsonl_line,
    read_json,
    read_jsonl_prefix,
    truncate_durable,
    write_json_atomic,
)
from recording.dataset.errors import DatasetError, DiskFullError, RecordingError, is_disk_full
from recording.dataset.features import ACTION_KEY, STATE_KEY, DatasetFeatures
from recording.dataset.parquet_io import column_features, write_episode_parquet
from recording.dataset.stats import combine_image_stats, numeric_stats, sample_indices, stats_to_json
from recording.dataset.video_encoder import CameraEncoder
from recording.dataset.video_settings import ENCODER_FOR_CODEC, VideoSettings

# Raw frames allowed to wait for the encoders (3 cameras x 448x448 RGB: ~1700 frames, ~19 s at 30 fps).
DEFAULT_MAX_BUFFER_MB = 1024.0


@dataclass(frozen=True)
class EpisodeInfo:
    """A saved episode: where it went and how long saving took."""

    episode_index: int
    length: int
    task: str
    task_index: int
    data_path: Path
    video_paths: dict[str, Path]
    duration_s: float  # length / fps
    save_seconds: float  # wall time save_episode took (mostly waiting for the encoders to drain)
    # Non-empty when the episode was committed (it is in the dataset) but flushing that commit to the
    # device failed afterwards: it may not survive a power cut. Say so to the operator.
    warning: str = ""


@dataclass
class _Episode:
    index: int
    task: str
    staging: Path
    encoders: dict[str, CameraEncoder]
    state: list[np.ndarray] = field(default_factory=list)
    action: list[np.ndarray] = field(default_factory=list)
    extras: dict[str, list[np.ndarray]] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.state)


class LeRobotWriter:
    """Append episodes to a LeRobot v2.1 dataset. Use ``create`` or ``open``, not the constructor."""

    def __init__(
        self,
        root: Path,
        info: dict[str, Any],
        tasks: list[str],
        video: VideoSettings,
        lock_fd: int,
        max_buffer_mb: float = DEFAULT_MAX_BUFFER_MB,
    ) -> None:
        self._root = Path(root)
        self._info = info
        self._features = DatasetFeatures.from_info_features(info["features"])
        self._fps = int(info["fps"])
        self._tasks = tasks
        self._video = video
        self._lock_fd: int | None = lock_fd
        self._episode: _Episode | None = None
        self._mutex = threading.RLock()
        _check_buffer(max_buffer_mb)
        self._max_buffer = int(max_buffer_mb * 1e6)

    # ----------------------------------------------------------------- construction
    @classmethod
    def create(
        cls,
        root: Path | str,
        fps: int,
        features: DatasetFeatures,
        *,
        robot_type: str | None = None,
        video: VideoSettings | None = None,
        max_buffer_mb: float = DEFAULT_MAX_BUFFER_MB,
    ) -> LeRobotWriter:
        """Start a new, empty dataset in ``root`` (must not exist or be an empty directory).

        ``max_buffer_mb`` caps the raw frames waiting for the encoders; past it add_frame refuses
        frames with a RecordingError instead of letting a too-slow codec eat all memory.
        """
        root = Path(root)
        _check_buffer(max_buffer_mb)
        if not isinstance(fps, int) or isinstance(fps, bool) or fps <= 0:
            raise ValueError(f"fps must be a positive integer, got {fps!r}")
        video = video or VideoSettings()
        video_info = video.info_block(fps) if features.cameras else None  # resolves the codec early
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise RecordingError(
                f"{root}: already exists and is not empty (use LeRobotWriter.open to append)"
            )
        (root / "meta").mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(root)
        try:
            for rel in (layout.TASKS_PATH, layout.EPISODES_PATH, layout.EPISODES_STATS_PATH):
                with open(root / rel, "wb") as f:
                    os.fsync(f.fileno())
            info = {
                "codebase_version": layout.CODEBASE_VERSION,
                "robot_type": robot_type,
                "total_episodes": 0,
                "total_frames": 0,
                "total_tasks": 0,
                "total_videos": 0,
                "total_chunks": 0,
                "chunks_size": layout.CHUNKS_SIZE,
                "fps": fps,
                "splits": {},
                "data_path": layout.DATA_PATH,
                "video_path": layout.VIDEO_PATH if features.cameras else None,
                "features": features.to_info_features(video_info),
            }
            write_json_atomic(root / layout.INFO_PATH, info)  # info.json last: now the dataset exists
            fsync_dir(root / "meta")
            fsync_dir(root)
        except BaseException as e:
            _unlock(lock_fd)
            if is_disk_full(e):
                raise DiskFullError(f"{root}: no space left on device while creating the dataset") from e
            raise
        return cls(root, info, [], video, lock_fd, max_buffer_mb)

    @classmethod
    def open(
        cls,
        root: Path | str,
        *,
        video: VideoSettings | None = None,
        max_buffer_mb: float = DEFAULT_MAX_BUFFER_MB,
    ) -> LeRobotWriter:
        """Reopen a dataset to append episodes, after removing anything a crash left behind.

        Everything after the last episode committed in info.json is rolled back: extra or partial
        JSONL lines, episode files with a higher index, and the staging area.
        """
        root = Path(root)
        _check_buffer(max_buffer_mb)
        if not (root / layout.INFO_PATH).is_file():
            raise DatasetError(f"{root / layout.INFO_PATH}: missing (not a dataset; use create)")
        lock_fd = _lock(root)
        try:
            info = read_json(root / layout.INFO_PATH)
            if not isinstance(info, dict) or info.get("codebase_version") != layout.CODEBASE_VERSION:
                raise DatasetError(
                    f"{root / layout.INFO_PATH}: codebase_version is not {layout.CODEBASE_VERSION}"
                )
            try:
                features = DatasetFeatures.from_info_features(info["features"])
                n_ep, n_tasks, n_frames = (
                    int(info[k]) for k in ("total_episodes", "total_tasks", "total_frames")
                )
                int(info["fps"])
            except (KeyError, TypeError, ValueError) as e:
                raise DatasetError(f"{root / layout.INFO_PATH}: {e}") from None
            if (
                info.get("data_path") != layout.DATA_PATH
                or int(info.get("chunks_size", 0)) != layout.CHUNKS_SIZE
            ):
                raise DatasetError(
                    f"{root / layout.INFO_PATH}: non-standard data_path/chunks_size; cannot append"
                )
            video = _video_for(root, info, features, video)
            tasks_recs = _recover_jsonl(root / layout.TASKS_PATH, n_tasks)
            ep_recs = _recover_jsonl(root / layout.EPISODES_PATH, n_ep)
            _recover_jsonl(root / layout.EPISODES_STATS_PATH, n_ep)
            if sum(int(r.get("length", 0)) for r in ep_recs) != n_frames:
                raise DatasetError(
                    f"{root / layout.EPISODES_PATH}: episode lengths do not add up to "
                    f"total_frames={n_frames} in info.json"
                )
            tasks = [
                str(r.get("task")) for r in sorted(tasks_recs, key=lambda r: int(r.get("task_index", 0)))
            ]
            _remove_orphans(root, n_ep)
            shutil.rmtree(root / layout.STAGING_DIR, ignore_errors=True)
            with contextlib.suppress(OSError):
                (root / "meta" / ".info.json.tmp").unlink()
        except BaseException:
            _unlock(lock_fd)
            raise
        return cls(root, info, tasks, video, lock_fd, max_buffer_mb)

    # ----------------------------------------------------------------- properties
    @property
    def root(self) -> Path:
        return self._root

    @property
    def fps(self) -> int:
        return self._fps

    @property
    def features(self) -> DatasetFeatures:
        return self._features

    @property
    def video_settings(self) -> VideoSettings:
        return self._video

    @property
    def num_episodes(self) -> int:
        """Saved (committed) episodes."""
        return int(self._info["total_episodes"])

    @property
    def total_frames(self) -> int:
        return int(self._info["total_frames"])

    @property
    def tasks(self) -> list[str]:
        return list(self._tasks)

    @property
    def recording(self) -> bool:
        """True between start_episode and save/discard."""
        return self._episode is not None

    @property
    def episode_frames(self) -> int:
        """Frames added to the episode in progress (0 when idle)."""
        ep = self._episode
        return ep.length if ep is not None else 0

    @property
    def encoder_backlog(self) -> int:
        """Largest number of frames waiting in one camera encoder (0 when keeping up)."""
        ep = self._episode
        return max((e.backlog for e in ep.encoders.values()), default=0) if ep is not None else 0

    # ----------------------------------------------------------------- episodes
    def start_episode(self, task: str) -> int:
        """Begin recording an episode of ``task``; returns its episode index."""
        with self._mutex:
            self._check_open()
            if self._episode is not None:
                raise RecordingError(
                    f"episode {self._episode.index} is still in progress; save or discard it"
                )
            if not isinstance(task, str) or not task.strip() or "\n" in task:
                raise ValueError(f"task must be a non-empty one-line string, got {task!r}")
            index = self.num_episodes
            staging = self._root / layout.STAGING_DIR / f"episode_{index:06d}"
            shutil.rmtree(staging, ignore_errors=True)
            encoders: dict[str, CameraEncoder] = {}
            try:
                staging.mkdir(parents=True)
                for cam in self._features.cameras:
                    encoders[cam.key] = CameraEncoder(
                        staging / f"{cam.key}.mp4",
                        cam.width,
                        cam.height,
                        self._fps,
                        self._video,
                        name=cam.name,
                    )
            except BaseException as e:
                for enc in encoders.values():
                    enc.abort()
                shutil.rmtree(staging, ignore_errors=True)
                if is_disk_full(e):
                    raise DiskFullError(f"{staging}: no space left on device") from e
                raise
            self._episode = _Episode(
                index, task, staging, encoders, extras={ex.key: [] for ex in self._features.extras}
            )
            return index

    def add_frame(
        self,
        state: Any,
        action: Any,
        images: Mapping[str, np.ndarray] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> int:
        """Add the next frame (timestamp = frame_index / fps); returns its frame index.

        ``images`` maps camera name (or full key) to an HxWx3 uint8 RGB array of the configured size.
        Everything is checked before anything is stored, so a rejected frame leaves the episode as it
        was. Images are copied, then encoded in the background.
        """
        with self._mutex:
            ep = self._require_episode()
            for key, enc in ep.encoders.items():
                if enc.error is not None:
                    raise self._encoder_failure(ep, key, enc.error)
            f = self._features
            st = _vector("state", state, len(f.state_names))
            ac = _vector("action", action, len(f.action_names))
            imgs = self._check_images(images or {})
            ex_vals: dict[str, np.ndarray] = {}
            given = dict(extras or {})
            for ex in f.extras:
                if ex.key not in given:
                    raise ValueError(f"extra feature {ex.key!r} missing from add_frame(extras=...)")
                ex_vals[ex.key] = _vector(ex.key, given.pop(ex.key), ex.shape[0], dtype=ex.dtype)
            if given:
                raise ValueError(f"unknown extra feature(s) {sorted(given)}")
            buffered = self._buffered_bytes(ep) + sum(img.nbytes for img in imgs.values())
            if buffered > self._max_buffer:
                raise RecordingError(
                    f"video encoders are {self.encoder_backlog} frame(s) behind ({buffered / 1e6:.0f} MB buffered, "
                    f"limit {self._max_buffer / 1e6:.0f} MB); frame refused. Use a faster codec/preset "
                    f"(e.g. libx264) or fewer/smaller cameras"
                )
            ep.state.append(st)
            ep.action.append(ac)
            for k, v in ex_vals.items():
                ep.extras[k].append(v)
            for key, img in imgs.items():
                ep.encoders[key].submit(img)
            return ep.length - 1

    def save_episode(self) -> EpisodeInfo:
        """Finish the videos and commit the episode atomically; blocks until encoding is done.

        On failure the episode is dropped, the dataset stays as it was before ``start_episode``, and
        DiskFullError (ENOSPC) or RecordingError says which file and why.
        """
        with self._mutex:
            ep = self._require_episode()
            if ep.length == 0:
                raise RecordingError(f"episode {ep.index} has no frames; add frames or discard it")
            t0 = time.monotonic()
            try:
                info = self._save(ep, t0)
            except BaseException as e:
                self._drop(ep)
                if isinstance(e, RecordingError):
                    raise
                n = self.num_episodes
                where = getattr(e, "filename", None) or ep.staging
                if is_disk_full(e):
                    raise DiskFullError(
                        f"{where}: no space left on device while saving episode {ep.index}; it is lost, "
                        f"the {n} saved episode(s) are intact"
                    ) from e
                raise RecordingError(
                    f"{where}: saving episode {ep.index} failed ({e}); it is lost, "
                    f"the {n} saved episode(s) are intact"
                ) from e
            self._episode = None
            self._remove_staging(ep)
            return info

    def discard_episode(self) -> bool:
        """Drop the episode in progress (nothing of it reaches the dataset); False if there was none."""
        with self._mutex:
            ep = self._episode
            if ep is None:
                return False
            self._drop(ep)
            return True

    def close(self) -> None:
        """Discard an unsaved episode and release the dataset lock (idempotent)."""
        with self._mutex:
            if self._episode is not None:
                self._drop(self._episode)
            if self._lock_fd is not None:
                _unlock(self._lock_fd, self.root)
                self._lock_fd = None

    def __enter__(self) -> LeRobotWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- internals
    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise RecordingError(f"{self._root}: writer is closed")

    def _require_episode(self) -> _Episode:
        self._check_open()
        if self._episode is None:
            raise RecordingError("no episode in progress; call start_episode(task) first")
        return self._episode

    def _buffered_bytes(self, ep: _Episode) -> int:
        return sum(enc.backlog * enc.width * enc.height * 3 for enc in ep.encoders.values())

    def _encoder_failure(self, ep: _Episode, key: str, err: BaseException) -> RecordingError:
        path = ep.encoders[key].path
        if is_disk_full(err):
            return DiskFullError(
                f"{path}: no space left on device while encoding {key}; "
                "discard this episode (earlier episodes are intact)"
            )
        return RecordingError(f"{path}: video encoder for {key} failed ({err}); discard this episode")

    def _check_images(self, images: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name, img in images.items():
            try:
                cam = self._features.camera(name)
            except KeyError as e:
                raise ValueError(str(e.args[0])) from None
            if cam.key in out:
                raise ValueError(f"camera {cam.name!r} given twice")
            arr = np.asarray(img)
            if arr.dtype != np.uint8 or arr.shape != (cam.height, cam.width, 3):
                raise ValueError(
                    f"camera {cam.name!r}: expected {cam.height}x{cam.width}x3 uint8 RGB, "
                    f"got {arr.shape} {arr.dtype}"
                )
            out[cam.key] = arr
        missing = [c.name for c in self._features.cameras if c.key not in out]
        if missing:
            raise ValueError(f"missing image(s) for camera(s) {missing}")
        return out

    def _drop(self, ep: _Episode) -> None:
        for enc in ep.encoders.values():
            enc.abort()
        self._remove_staging(ep)
        self._episode = None

    def _remove_staging(self, ep: _Episode) -> None:
        shutil.rmtree(ep.staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            ep.staging.parent.rmdir()  # only when empty

    def _save(self, ep: _Episode, t0: float) -> EpisodeInfo:
        length, fps = ep.length, self._fps
        results = {}
        for key, enc in ep.encoders.items():
            try:
                results[key] = enc.finish()
            except BaseException as e:
                raise self._encoder_failure(ep, key, e) from e
            if results[key].frames != length:
                raise RecordingError(f"{enc.path}: encoded {results[key].frames} frames, expected {length}")
        if ep.task in self._tasks:
            task_index, new_task = self._tasks.index(ep.task), False
        else:
            task_index, new_task = len(self._tasks), True
        first = self.total_frames
        frame_index = np.arange(length, dtype=np.int64)
        columns: dict[str, np.ndarray] = {
            STATE_KEY: np.stack(ep.state),
            ACTION_KEY: np.stack(ep.action),
            **{k: np.stack(v) for k, v in ep.extras.items()},
            "timestamp": (frame_index / fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(length, ep.index, dtype=np.int64),
            "index": first + frame_index,
            "task_index": np.full(length, task_index, dtype=np.int64),
        }
        feats = self._info["features"]
        stats: dict[str, dict[str, np.ndarray]] = {}
        picks = sample_indices(length)
        for key in feats:
            if key in results:
                fs = results[key].frame_stats
                stats[key] = combine_image_stats([fs[i] for i in picks])
            elif key in columns:
                stats[key] = numeric_stats(columns[key])
        staged_parquet = ep.staging / "data.parquet"
        write_episode_parquet(staged_parquet, columns, column_features(feats))
        fsync_dir(ep.staging)

        chunk = layout.episode_chunk(ep.index)
        data_dst = layout.data_file(self._root, ep.index)
        moves = [(staged_parquet, data_dst)]
        video_paths: dict[str, Path] = {}
        for key, res in results.items():
            dst = layout.video_file(self._root, ep.index, key)
            moves.append((res.path, dst))
            video_paths[key] = dst
        new_info = dict(self._info)
        n = ep.index + 1
        new_info.update(
            total_episodes=n,
            total_frames=first + length,
            total_tasks=len(self._tasks) + int(new_task),
            total_videos=n * len(results),
            total_chunks=max(int(self._info.get("total_chunks", 0)), chunk + 1, layout.total_chunks(n)),
            splits={"train": f"0:{n}"},
        )
        self._commit(ep, moves, new_task, task_index, stats, length, new_info)
        # committed: from here on the episode is part of the dataset, whatever fails next
        self._info = new_info
        if new_task:
            self._tasks.append(ep.task)
        warning = ""
        try:
            fsync_dir((self._root / layout.INFO_PATH).parent)
        except OSError as e:
            warning = (
                f"episode {ep.index} is saved ({self._root / layout.INFO_PATH} lists it), but flushing "
                f"the directory to the device failed ({e}); it may be lost if the power fails now; "
                "check the disk"
            )
        return EpisodeInfo(
            ep.index,
            length,
            ep.task,
            task_index,
            data_dst,
            video_paths,
            length / fps,
            time.monotonic() - t0,
            warning,
        )

    def _commit(
        self,
        ep: _Episode,
        moves: list[tuple[Path, Path]],
        new_task: bool,
        task_index: int,
        stats: dict[str, dict[str, np.ndarray]],
        length: int,
        new_info: dict[str, Any],
    ) -> None:
        root = self._root
        jsonl = {
            rel: root / rel for rel in (layout.TASKS_PATH, layout.EPISODES_STATS_PATH, layout.EPISODES_PATH)
        }
        sizes = {p: p.stat().st_size for p in jsonl.values()}
        moved: list[Path] = []
        try:
            for src, dst in moves:
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.rename(src, dst)
                moved.append(dst)
            for d in {dst.parent for _, dst in moves} | {dst.parent.parent for _, dst in moves}:
                fsync_dir(d)
            if new_task:
                append_durable(
                    jsonl[layout.TASKS_PATH], jsonl_line({"task_index": task_index, "task": ep.task})
                )
            append_durable(
                jsonl[layout.EPISODES_STATS_PATH],
                jsonl_line({"episode_index": ep.index, "stats": stats_to_json(stats)}),
            )
            append_durable(
                jsonl[layout.EPISODES_PATH],
                jsonl_line({"episode_index": ep.index, "tasks": [ep.task], "length": length}),
            )
            # commit point: once os.replace has put the new info.json in place nothing may be rolled
            # back (the JSONL lines and files it counts must stay); its directory fsync is done by
            # the caller, after the commit
            write_json_atomic(root / layout.INFO_PATH, new_info, sync_dir=False)
        except BaseException:
            for dst in moved:
                with contextlib.suppress(OSError):
                    dst.unlink()
            for p, size in sizes.items():
                with contextlib.suppress(OSError):
                    if p.stat().st_size != size:
                        truncate_durable(p, size)
            raise


# --------------------------------------------------------------------- helpers
def _vector(what: str, value: Any, n: int, dtype: str = "float32") -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64 if dtype.startswith("float") else None)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: not numeric ({value!r:.60})") from None
    arr = arr.reshape(-1) if arr.ndim <= 1 else arr
    if arr.shape != (n,):
        raise ValueError(f"{what}: expected {n} values, got shape {np.shape(value)}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: contains NaN or infinite values")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what}: not numeric (dtype {arr.dtype})")
    return arr.astype(dtype)


def _check_buffer(max_buffer_mb: float) -> None:
    if not max_buffer_mb > 0:
        raise ValueError(f"max_buffer_mb must be positive, got {max_buffer_mb!r}")


def _lock(root: Path) -> int:
    """Take the dataset's writer lock (a flock on a file in its root), or raise if another has it.

    The file is removed on release so it never ends up in an uploaded dataset. A writer that raced
    with a release may have locked the removed file; it sees the path no longer names its file and
    tries again.
    """
    path = root / layout.LOCK_FILE
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RecordingError(f"{root}: dataset is open in another writer") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
    raise RecordingError(f"{root}: could not take the writer lock (lock file keeps changing)")


def _unlock(fd: int, root: Path | None = None) -> None:
    """Release the lock; with `root`, remove the lock file first (while still holding it)."""
    if root is not None:
        with contextlib.suppress(OSError):
            (root / layout.LOCK_FILE).unlink()
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):
        os.close(fd)


def _video_for(
    root: Path, info: dict[str, Any], features: DatasetFeatures, video: VideoSettings | None
) -> VideoSettings:
    """Video settings for appending: must produce the codec already used by the dataset."""
    if not features.cameras:
        return video or VideoSettings()
    block = info["features"][features.cameras[0].key].get("info") or {}
    codec = block.get("video.codec")
    if video is None:
        if codec not in ENCODER_FOR_CODEC:
            raise DatasetError(
                f"{root / layout.INFO_PATH}: unknown video.codec {codec!r}; pass video settings"
            )
        return VideoSettings(codec=ENCODER_FOR_CODEC[codec])
    if codec is not None and video.canonical_codec() != codec:
        raise RecordingError(
            f"{root}: dataset videos are {codec}, cannot append {video.canonical_codec()} "
            "(all episodes of a camera must share the codec)"
        )
    return video


def _recover_jsonl(path: Path, count: int) -> list[dict[str, Any]]:
    """Keep the first ``count`` complete lines of a JSONL file, cutting off what a crash left after them."""
    try:
        recs, ends = read_jsonl_prefix(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing") from None
    if len(recs) < count:
        raise DatasetError(f"{path}: has {len(recs)} complete line(s), info.json expects {count}")
    keep = ends[count - 1] if count else 0
    if path.stat().st_size != keep:
        truncate_durable(path, keep)
    return recs[:count]


_EPISODE_FILE = re.compile(r"^episode_(\d{6})\.(parquet|mp4)$")


def _remove_orphans(root: Path, num_episodes: int) -> None:
    """Delete episode files with an index not yet committed (left by a crash during save)."""
    for top in ("data", "videos"):
        base = root / top
        if not base.is_dir():
            continue
        for p in base.rglob("episode_*"):
            m = _EPISODE_FILE.match(p.name)
            if m and int(m.group(1)) >= num_episodes and p.is_file():
                p.unlink()

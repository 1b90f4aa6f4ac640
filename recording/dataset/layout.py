"""Paths and constants of the LeRobot v2.1 layout (docs/lerobot_v21.md §2, §3).

One place for the path templates so the writer, reader and validator cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

CODEBASE_VERSION = "v2.1"
CHUNKS_SIZE = 1000
INFO_PATH = "meta/info.json"
EPISODES_PATH = "meta/episodes.jsonl"
TASKS_PATH = "meta/tasks.jsonl"
EPISODES_STATS_PATH = "meta/episodes_stats.jsonl"
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
# Writer scratch space: hidden, outside data/ and videos/, so loaders never see half-written files.
STAGING_DIR = ".staging"
LOCK_FILE = ".evo1_writer.lock"
# Tolerance LeRobot uses when matching timestamps to frames (A.6).
TOLERANCE_S = 1e-4


def episode_chunk(episode_index: int, chunks_size: int = CHUNKS_SIZE) -> int:
    """Chunk directory number of an episode."""
    return episode_index // chunks_size


def data_file(
    root: Path, episode_index: int, chunks_size: int = CHUNKS_SIZE, template: str = DATA_PATH
) -> Path:
    """Absolute parquet path of an episode."""
    rel = template.format(
        episode_chunk=episode_chunk(episode_index, chunks_size), episode_index=episode_index
    )
    return Path(root) / rel


def video_file(
    root: Path, episode_index: int, video_key: str, chunks_size: int = CHUNKS_SIZE, template: str = VIDEO_PATH
) -> Path:
    """Absolute mp4 path of one camera of an episode."""
    rel = template.format(
        episode_chunk=episode_chunk(episode_index, chunks_size),
        video_key=video_key,
        episode_index=episode_index,
    )
    return Path(root) / rel


def total_chunks(num_episodes: int, chunks_size: int = CHUNKS_SIZE) -> int:
    """Number of chunk directories used by ``num_episodes`` episodes."""
    return 0 if num_episodes <= 0 else (num_episodes - 1) // chunks_size + 1

"""Reading episode mp4s back: stream properties, every frame with its pts, frames at timestamps.

Used by the reader (frames by timestamp, as LeRobot fetches them) and by the validator (frame
count, pts, codec and size of every video).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import av
import numpy as np

from recording.dataset.errors import DatasetError
from recording.dataset.layout import TOLERANCE_S

T = TypeVar("T")


@dataclass(frozen=True)
class VideoProbe:
    """Container-level facts about an mp4's single video stream."""

    codec: str  # canonical FFmpeg name: av1, h264, hevc
    pix_fmt: str
    width: int
    height: int
    average_rate: Fraction | None
    time_base: Fraction
    duration_s: float | None  # stream duration (the v3 converter relies on it)
    num_streams: int


def probe(path: Path) -> VideoProbe:
    """Open an mp4 and describe its video stream (DatasetError names file and reason)."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise DatasetError(f"{path}: no video stream")
            st = c.streams.video[0]
            cc = st.codec_context
            dur = None if st.duration is None or st.time_base is None else float(st.duration * st.time_base)
            return VideoProbe(
                codec=cc.codec.canonical_name,
                pix_fmt=str(cc.pix_fmt),
                width=cc.width,
                height=cc.height,
                average_rate=st.average_rate,
                time_base=st.time_base or Fraction(0),
                duration_s=dur,
                num_streams=len(c.streams),
            )
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing") from None
    except (av.FFmpegError, OSError, ValueError) as e:
        raise DatasetError(f"{path}: cannot open video ({e})") from None


def _decoded(path: Path, convert: Callable[[Any], T]) -> Iterator[tuple[float, T]]:
    """(pts in seconds, ``convert(frame)``) for every frame in presentation order; errors as DatasetError."""
    try:
        with av.open(str(path)) as c:
            st = c.streams.video[0]
            tb = st.time_base
            for frame in c.decode(st):
                if frame.pts is None:
                    raise DatasetError(f"{path}: a decoded frame has no pts")
                yield float(frame.pts * tb), convert(frame)
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing") from None
    except (av.FFmpegError, OSError, ValueError, IndexError) as e:
        raise DatasetError(f"{path}: cannot decode video ({e})") from None


def iter_frames(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (pts in seconds, HxWx3 uint8 RGB) for every frame in presentation order."""
    return _decoded(path, lambda frame: frame.to_ndarray(format="rgb24"))


def iter_pts(path: Path) -> Iterator[float]:
    """Yield the pts (seconds) of every decoded frame without converting pixels."""
    return (pts for pts, _ in _decoded(path, lambda frame: None))


def decode_at(path: Path, timestamps: Sequence[float], tolerance_s: float = TOLERANCE_S) -> np.ndarray:
    """Frames whose pts match ``timestamps`` (seconds) within ``tolerance_s``, as (N, H, W, 3) uint8.

    Seeks to the keyframe before the first wanted timestamp and decodes forward, like LeRobot's
    PyAV backend; a timestamp with no frame that close raises DatasetError.
    """
    ts = [float(t) for t in timestamps]
    if not ts:
        raise ValueError("decode_at needs at least one timestamp")
    wanted = sorted(set(ts))
    found: dict[float, np.ndarray] = {}
    try:
        with av.open(str(path)) as c:
            st = c.streams.video[0]
            tb = st.time_base
            c.seek(max(int(wanted[0] / tb) - 1, 0), stream=st, backward=True, any_frame=False)
            i = 0
            for frame in c.decode(st):
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb)
                while i < len(wanted) and wanted[i] < t - tolerance_s:
                    i += 1  # skipped over: no frame close enough
                if i >= len(wanted):
                    break
                if abs(t - wanted[i]) < tolerance_s:
                    img = frame.to_ndarray(format="rgb24")
                    while i < len(wanted) and abs(t - wanted[i]) < tolerance_s:
                        found[wanted[i]] = img
                        i += 1
                if i >= len(wanted):
                    break
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing") from None
    except (av.FFmpegError, OSError, ValueError, IndexError) as e:
        raise DatasetError(f"{path}: cannot decode video ({e})") from None
    missing = [t for t in wanted if t not in found]
    if missing:
        raise DatasetError(
            f"{path}: no frame within {tolerance_s:g} s of timestamp(s) {', '.join(f'{t:.6f}' for t in missing[:5])}"
        )
    return np.stack([found[t] for t in ts])

"""A PNG contact sheet of one episode: frames of every camera plus state/action plots.

Drawn with numpy and OpenCV only, so it works on a headless recording PC without matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from recording.dataset.errors import DatasetError
from recording.dataset.features import ACTION_KEY, STATE_KEY
from recording.dataset.reader import LeRobotReader

BG = (255, 255, 255)
INK = (30, 30, 30)
PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, color=INK) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _plot(values: np.ndarray, names: list[str], title: str, width: int, height: int) -> np.ndarray:
    """Line plot of an (L, N) array, one colour per column, with a legend."""
    img = np.full((height, width, 3), BG, dtype=np.uint8)
    left, right, top, bottom = 50, 110, 22, 22
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    cv2.rectangle(img, (x0, y0), (x1, y1), INK, 1)
    _text(img, title, (x0, 15))
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim == 1:
        vals = vals[:, None]
    lo, hi = float(np.min(vals)), float(np.max(vals))
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    _text(img, f"{hi:.2f}", (2, y0 + 10), 0.35)
    _text(img, f"{lo:.2f}", (2, y1), 0.35)
    n = len(vals)
    xs = x0 + (np.arange(n) / max(n - 1, 1)) * (x1 - x0)
    for j in range(vals.shape[1]):
        ys = y1 - (vals[:, j] - lo) / (hi - lo) * (y1 - y0)
        pts = np.stack([xs, ys], axis=1).round().astype(np.int32).reshape(-1, 1, 2)
        color = PALETTE[j % len(PALETTE)]
        cv2.polylines(img, [pts], False, color, 1, cv2.LINE_AA)
        ly = y0 + 12 + 14 * j
        if ly < y1:
            cv2.line(img, (x1 + 8, ly - 4), (x1 + 24, ly - 4), color, 2)
            _text(img, names[j] if j < len(names) else str(j), (x1 + 28, ly), 0.35)
    _text(img, "frame 0", (x0, height - 6), 0.35)
    _text(img, f"{n - 1}", (x1 - 20, height - 6), 0.35)
    return img


def render_preview(root: Path | str, episode: int, num_frames: int = 6, thumb_width: int = 200) -> np.ndarray:
    """The contact sheet as an RGB uint8 array."""
    reader = LeRobotReader(root)
    if not 0 <= episode < reader.num_episodes:
        raise DatasetError(f"{root}: episode {episode} out of range 0..{reader.num_episodes - 1}")
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    cols = reader.episode_columns(episode)
    length = reader.episode_length(episode)
    picks = np.unique(np.round(np.linspace(0, length - 1, min(num_frames, length))).astype(int))
    rows: list[np.ndarray] = []
    sheet_w = max(thumb_width * len(picks), 640)
    for key in reader.camera_keys:
        cam = reader.features.camera(key)
        th = max(1, round(thumb_width * cam.height / cam.width))
        frames = reader.decode_video(episode, key, cols["timestamp"][picks].astype(np.float64))
        row = np.full((th + 20, sheet_w, 3), BG, dtype=np.uint8)
        _text(row, cam.name, (4, 14))
        for i, (k, fr) in enumerate(zip(picks, frames, strict=True)):
            thumb = cv2.resize(fr, (thumb_width, th), interpolation=cv2.INTER_AREA)
            row[20:, i * thumb_width : (i + 1) * thumb_width] = thumb
            _text(row, f"#{k}", (i * thumb_width + 60, 14), 0.4)
        rows.append(row)
    task = reader.tasks.get(int(cols["task_index"][0]), "")
    header = np.full((28, sheet_w, 3), BG, dtype=np.uint8)
    _text(
        header,
        f"{Path(root).name}  episode {episode}  {length} frames @ {reader.fps} fps  task: {task}",
        (4, 19),
        0.5,
    )
    plots = [
        _plot(cols[STATE_KEY], list(reader.features.state_names), STATE_KEY, sheet_w, 200),
        _plot(cols[ACTION_KEY], list(reader.features.action_names), ACTION_KEY, sheet_w, 200),
    ]
    return np.concatenate([header, *rows, *plots], axis=0)


def write_preview(root: Path | str, episode: int, out: Path | str, num_frames: int = 6) -> Path:
    """Render the contact sheet and save it as PNG."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"{out}: output must be a .png file")
    img = render_preview(root, episode, num_frames)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{out}: could not write PNG")
    return out

"""What a user watches during training: CSV log, optional TensorBoard, a loss-curve PNG at the end."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

CSV_NAME = "train_log.csv"
PNG_NAME = "loss.png"
COLUMNS = ("step", "loss", "lr", "grad_norm", "samples_per_s", "elapsed_s", "val_loss", "batch_hash")


class RunLog:
    """Appends one CSV row per logged step (resumed runs append to the same file) and mirrors to TensorBoard."""

    def __init__(self, out: Path, tensorboard: bool, resume_step: int = 0) -> None:
        self.path = out / CSV_NAME
        self.tb_note: str | None = None
        rows = read_log(self.path) if resume_step and self.path.is_file() else []
        rows = [r for r in rows if int(r["step"]) <= resume_step]
        with open(self.path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            for r in rows:
                w.writerow({k: r.get(k, "") for k in COLUMNS})
        self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (lives with the run)
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS)
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                self.tb_note = "tensorboard is not installed: logging to CSV only"

    def write(self, row: dict[str, Any]) -> None:
        self._csv.writerow({k: row.get(k, "") for k in COLUMNS})
        self._file.flush()
        if self._tb is not None:
            for k in ("loss", "lr", "grad_norm", "samples_per_s", "val_loss"):
                v = row.get(k)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(f"train/{k}", v, int(row["step"]))

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def plot_loss(csv_path: Path, png_path: Path, width: int = 900, height: int = 500) -> Path | None:
    """Loss (and validation loss) against step, log-scale y, drawn with OpenCV (no matplotlib needed)."""
    import cv2

    rows = read_log(csv_path)
    pts = [(int(r["step"]), float(r["loss"])) for r in rows if r.get("loss") not in (None, "")]
    val = [(int(r["step"]), float(r["val_loss"])) for r in rows if r.get("val_loss") not in (None, "")]
    pts = [(s, v) for s, v in pts if math.isfinite(v) and v > 0]
    if not pts:
        return None
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 80, 20, 30, 50
    steps = [s for s, _ in pts + val]
    vals = [v for _, v in pts + val if v > 0]
    s0, s1 = min(steps), max(max(steps), min(steps) + 1)
    y0, y1 = math.log10(min(vals)), math.log10(max(vals))
    if y1 - y0 < 1e-6:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def xy(s: float, v: float) -> tuple[int, int]:
        x = left + (s - s0) / (s1 - s0) * (width - left - right)
        y = top + (y1 - math.log10(v)) / (y1 - y0) * (height - top - bottom)
        return int(round(x)), int(round(y))

    cv2.rectangle(img, (left, top), (width - right, height - bottom), (0, 0, 0), 1)
    for k in range(5):
        v = 10 ** (y0 + (y1 - y0) * k / 4)
        _, y = xy(s0, v)
        cv2.line(img, (left - 4, y), (left, y), (0, 0, 0), 1)
        cv2.putText(img, f"{v:.3g}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    for k in range(5):
        s = s0 + (s1 - s0) * k / 4
        x, _ = xy(s, 10**y0)
        cv2.putText(
            img, f"{int(s)}", (x - 10, height - bottom + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1
        )
    for series, color in ((pts, (200, 80, 0)), (val, (0, 0, 220))):
        for a, b in itertools.pairwise(series):
            cv2.line(img, xy(*a), xy(*b), color, 1, cv2.LINE_AA)
    cv2.putText(
        img,
        "training loss (blue), validation loss (red) vs step",
        (left, 20),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (0, 0, 0),
        1,
    )
    cv2.imwrite(str(png_path), img)
    return png_path

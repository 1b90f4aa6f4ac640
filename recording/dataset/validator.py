"""Check a LeRobot v2.1 dataset the way LeRobot 0.3.3 and the v3 converter will use it.

Implements the checklist of docs/lerobot_v21.md §7: schema of info.json and features; counts
across info.json and the three JSONL files; every episode parquet (columns, types, frame/episode/
global indices, ideal timestamps, task indices, finite values); every mp4 fully decoded (codec,
pix_fmt, size, same settings in every episode, frame count, pts of frame k = k/fps, duration); and
per-episode stats recomputed from the data. Each problem names the file and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from recording.dataset import layout
from recording.dataset.atomic_io import read_json, read_jsonl
from recording.dataset.errors import DatasetError
from recording.dataset.features import CAMERA_PREFIX, DEFAULT_FEATURES, IMAGE_NAMES
from recording.dataset.parquet_io import column_features, column_to_numpy, read_episode_table
from recording.dataset.stats import (
    compare_stats,
    estimate_num_samples,
    image_stats_from_frames,
    numeric_stats,
    sample_indices,
)
from recording.dataset.video_decode import VideoProbe, iter_frames, probe

INFO_FIELDS: dict[str, tuple[type, ...]] = {
    "codebase_version": (str,),
    "robot_type": (str, type(None)),
    "total_episodes": (int,),
    "total_frames": (int,),
    "total_tasks": (int,),
    "total_videos": (int,),
    "total_chunks": (int,),
    "chunks_size": (int,),
    "fps": (int,),
    "splits": (dict,),
    "data_path": (str,),
    "video_path": (str, type(None)),
    "features": (dict,),
}
VIDEO_INFO_KEYS = (
    "video.height",
    "video.width",
    "video.codec",
    "video.pix_fmt",
    "video.is_depth_map",
    "video.fps",
    "video.channels",
    "has_audio",
)
# Stored stats of numeric columns must match a recomputation. Image stats are computed by the writer
# on the raw frames and here on decoded (lossy) video: mean/std are compared with a tolerance that
# codec loss stays inside for natural images; min/max of lossy video are unreliable (ringing, chroma subsampling at
# saturated edges), so those are only checked for order: 0 <= min <= mean <= max <= 1.
NUMERIC_ATOL = {"min": 1e-6, "max": 1e-6, "mean": 1e-5, "std": 1e-5}
IMAGE_ATOL = {"mean": 0.03, "std": 0.03}
# On noisy or highly textured frames lossy encoding (LeRobot's default AV1 crf 30) smooths the image and
# shifts the pixel std far beyond IMAGE_ATOL; LeRobot never checks this, so the image-stat comparison is
# a warning (an error only with strict=True / `evo1 dataset validate --strict`).
DURATION_TOL_S = 1e-3


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: the file (relative to the root) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class ValidationReport:
    """Outcome of ``validate_dataset``."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    episodes: int = 0
    frames: int = 0
    videos_decoded: int = 0
    warnings: list[Problem] = field(default_factory=list)  # do not make the dataset invalid

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_dataset(
    root: Path | str,
    *,
    decode_videos: bool = True,
    progress: Callable[[int, int], None] | None = None,
    strict: bool = False,
) -> ValidationReport:
    """Run every check; never raises for a bad dataset, returns all problems found.

    ``strict``: image statistics that differ from the decoded video (codec loss) are problems, not warnings.
    """
    v = _Validator(Path(root), decode_videos, progress, strict)
    try:
        return v.run()
    except Exception as e:  # a malformed value no check anticipated: still a report, not a traceback
        v.add(v.root, f"could not finish checking ({type(e).__name__}: {e})")
        return v.report


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Validator:
    def __init__(
        self,
        root: Path,
        decode_videos: bool,
        progress: Callable[[int, int], None] | None,
        strict: bool = False,
    ) -> None:
        self.strict = strict
        self.root = root
        self.decode = decode_videos
        self.progress = progress
        self.report = ValidationReport(root)
        self.first_probe: dict[str, tuple[str, VideoProbe]] = {}

    def add(self, path: Path | str, reason: str, *, warning: bool = False) -> None:
        p = Path(path)
        try:
            rel = str(p.relative_to(self.root)) if p.is_absolute() else str(p)
        except ValueError:
            rel = str(p)
        (self.report.warnings if warning else self.report.problems).append(Problem(rel or ".", reason))

    # ------------------------------------------------------------------ driver
    def run(self) -> ValidationReport:
        if not self.root.is_dir():
            self.add(self.root, "not a directory")
            return self.report
        info = self.check_info()
        if info is None:
            return self.report
        tasks = self.check_tasks(info)
        episodes = self.check_episodes(info, tasks)
        stats = self.check_stats_file(info, episodes)
        if episodes is None:
            return self.report
        self.check_stray_files(info, len(episodes))
        features = info["features"]
        video_keys = [k for k, v in features.items() if v.get("dtype") == "video"]
        start = 0
        total = len(episodes)
        for i, ep in enumerate(episodes):
            length = ep["length"]
            cols = self.check_parquet(info, i, length, start, tasks, ep)
            ep_stats = stats[i] if stats is not None and i < len(stats) else None
            sampled: dict[str, list[np.ndarray] | None] = {}
            for key in video_keys:
                sampled[key] = self.check_video(info, i, key, length)
            if ep_stats is not None:
                self.check_episode_stats(info, i, length, ep_stats, cols, sampled)
            start += length
            if self.progress is not None:
                self.progress(i + 1, total)
        self.report.episodes = len(episodes)
        self.report.frames = start
        return self.report

    # ------------------------------------------------------------------ meta
    def check_info(self) -> dict[str, Any] | None:
        path = self.root / layout.INFO_PATH
        try:
            info = read_json(path)
        except DatasetError as e:
            self.add(path, str(e).split(": ", 1)[-1])
            return None
        if not isinstance(info, dict):
            self.add(path, "top level is not a JSON object")
            return None
        fatal = False
        for key, types in INFO_FIELDS.items():
            if key not in info:
                self.add(path, f"field '{key}' missing")
                fatal = fatal or key in ("fps", "features", "chunks_size", "data_path", "video_path")
            elif not isinstance(info[key], types) or (int in types and isinstance(info[key], bool)):
                self.add(path, f"field '{key}' has type {type(info[key]).__name__}")
                fatal = fatal or key in ("fps", "features", "chunks_size", "data_path", "video_path")
        if fatal:
            return None
        if info.get("codebase_version") != layout.CODEBASE_VERSION:
            self.add(
                path,
                f"codebase_version is {info['codebase_version']!r}, expected {layout.CODEBASE_VERSION!r}",
            )
        if info["fps"] <= 0:
            self.add(path, f"fps {info['fps']} is not positive")
            return None
        if info["chunks_size"] <= 0:
            self.add(path, f"chunks_size {info['chunks_size']} is not positive")
            return None
        if info["data_path"] != layout.DATA_PATH:
            self.add(path, f"data_path {info['data_path']!r} is not the v2.1 template {layout.DATA_PATH!r}")
            return None
        if not self.check_features(path, info):
            return None
        has_video = any(v.get("dtype") == "video" for v in info["features"].values())
        if has_video and info["video_path"] != layout.VIDEO_PATH:
            self.add(
                path, f"video_path {info['video_path']!r} is not the v2.1 template {layout.VIDEO_PATH!r}"
            )
            return None
        if not has_video and info["video_path"] is not None:
            self.add(path, "video_path is set but no feature has dtype 'video'")
        return info

    def check_features(self, path: Path, info: dict[str, Any]) -> bool:
        feats = info["features"]
        ok = True
        for key, want in DEFAULT_FEATURES.items():
            got = feats.get(key)
            if (
                not isinstance(got, dict)
                or got.get("dtype") != want["dtype"]
                or got.get("shape") != want["shape"]
            ):
                self.add(
                    path, f"feature '{key}' must be dtype {want['dtype']} shape {want['shape']}, got {got!r}"
                )
                ok = False
        for key, spec in feats.items():
            where = f"feature '{key}'"
            if "/" in key:
                self.add(path, f"{where}: '/' is not allowed in feature names")
            if not isinstance(spec, dict) or not {"dtype", "shape", "names"} <= set(spec):
                self.add(path, f"{where}: needs dtype, shape and names")
                ok = False
                continue
            shape = spec["shape"]
            if not isinstance(shape, list) or not shape or not all(_is_int(s) and s > 0 for s in shape):
                self.add(path, f"{where}: shape {shape!r} is not a list of positive integers")
                ok = False
                continue
            dtype = spec["dtype"]
            if dtype == "video":
                ok &= self.check_video_feature(path, info, key, spec)
            elif dtype in ("image", "string"):
                self.add(path, f"{where}: dtype {dtype!r} is not supported by this stack")
                ok = False
            else:
                if dtype not in ("float32", "float64", "int64", "int32", "bool"):
                    self.add(path, f"{where}: unknown dtype {dtype!r}")
                    ok = False
                if "image" in key:
                    self.add(path, f"{where}: non-image key contains 'image' (LeRobot expects (3,1,1) stats)")
                if len(shape) != 1:
                    self.add(path, f"{where}: shape {shape} not supported (only [n])")
                    ok = False
                names = spec["names"]
                if isinstance(names, list) and len(names) != shape[0]:
                    self.add(path, f"{where}: {len(names)} names for shape {shape}")
        return ok

    def check_video_feature(self, path: Path, info: dict[str, Any], key: str, spec: dict[str, Any]) -> bool:
        where = f"feature '{key}'"
        shape = spec["shape"]
        if len(shape) != 3 or shape[2] != 3:
            self.add(path, f"{where}: video shape {shape} is not [height, width, 3]")
            return False
        if spec["names"] != IMAGE_NAMES:
            self.add(path, f"{where}: names {spec['names']!r} must be {IMAGE_NAMES}")
        if not key.startswith(CAMERA_PREFIX):
            self.add(path, f"{where}: video keys must start with {CAMERA_PREFIX!r}")
        vinfo = spec.get("info")
        if not isinstance(vinfo, dict):
            self.add(path, f"{where}: 'info' block missing")
            return False
        missing = [k for k in VIDEO_INFO_KEYS if k not in vinfo]
        if missing:
            self.add(path, f"{where}: info block lacks {missing}")
            return False
        if (vinfo["video.height"], vinfo["video.width"]) != (shape[0], shape[1]):
            self.add(
                path,
                f"{where}: info size {vinfo['video.width']}x{vinfo['video.height']} "
                f"differs from shape {shape}",
            )
        if vinfo["video.fps"] != info["fps"]:
            self.add(path, f"{where}: video.fps {vinfo['video.fps']} differs from fps {info['fps']}")
        if vinfo["video.channels"] != 3 or vinfo["has_audio"] is not False:
            self.add(path, f"{where}: expected video.channels 3 and has_audio false")
        return True

    def check_tasks(self, info: dict[str, Any]) -> dict[int, str] | None:
        path = self.root / layout.TASKS_PATH
        try:
            recs = read_jsonl(path)
        except DatasetError as e:
            self.add(path, str(e).split(": ", 1)[-1])
            return None
        tasks: dict[int, str] = {}
        for i, r in enumerate(recs):
            if r.get("task_index") != i or not isinstance(r.get("task"), str):
                self.add(path, f"line {i + 1}: expected task_index {i} and a task string, got {r!r}")
                return None
            if r["task"] in tasks.values():
                self.add(path, f"line {i + 1}: task {r['task']!r} listed twice")
            tasks[i] = r["task"]
        if "total_tasks" in info and info["total_tasks"] != len(tasks):
            self.add(
                self.root / layout.INFO_PATH,
                f"total_tasks is {info['total_tasks']}, tasks.jsonl has {len(tasks)}",
            )
        return tasks

    def check_episodes(
        self, info: dict[str, Any], tasks: dict[int, str] | None
    ) -> list[dict[str, Any]] | None:
        path = self.root / layout.EPISODES_PATH
        info_path = self.root / layout.INFO_PATH
        try:
            recs = read_jsonl(path)
        except DatasetError as e:
            self.add(path, str(e).split(": ", 1)[-1])
            return None
        known = set(tasks.values()) if tasks is not None else None
        for i, r in enumerate(recs):
            if r.get("episode_index") != i:
                self.add(
                    path,
                    f"line {i + 1}: episode_index {r.get('episode_index')!r}, expected {i} "
                    "(episodes must be numbered 0..N-1 without gaps)",
                )
                return None
            if not _is_int(r.get("length")) or r["length"] <= 0:
                self.add(path, f"line {i + 1}: length {r.get('length')!r} is not a positive integer")
                return None
            ep_tasks = r.get("tasks")
            if (
                not isinstance(ep_tasks, list)
                or not ep_tasks
                or not all(isinstance(t, str) for t in ep_tasks)
            ):
                self.add(path, f"line {i + 1}: tasks must be a non-empty list of strings")
            elif known is not None and not set(ep_tasks) <= known:
                self.add(path, f"line {i + 1}: task(s) {sorted(set(ep_tasks) - known)} not in tasks.jsonl")
        n = len(recs)
        n_videos = sum(1 for v in info["features"].values() if v.get("dtype") == "video")
        frames = sum(r["length"] for r in recs)
        if n == 0:
            self.add(path, "no episodes (LeRobot cannot load an empty dataset)")
        expect = {
            "total_episodes": n,
            "total_frames": frames,
            "total_videos": n * n_videos,
            "total_chunks": layout.total_chunks(n, info["chunks_size"]),
        }
        for k, v in expect.items():
            if k in info and info[k] != v:
                self.add(info_path, f"{k} is {info[k]}, expected {v}")
        if "splits" in info and info["splits"] != {"train": f"0:{n}"}:
            self.add(info_path, f"splits is {info['splits']!r}, expected {{'train': '0:{n}'}}")
        return recs

    def check_stats_file(
        self, info: dict[str, Any], episodes: list[dict[str, Any]] | None
    ) -> list[dict[str, Any]] | None:
        path = self.root / layout.EPISODES_STATS_PATH
        try:
            recs = read_jsonl(path)
        except DatasetError as e:
            self.add(path, str(e).split(": ", 1)[-1])
            return None
        if episodes is not None and len(recs) != len(episodes):
            self.add(path, f"{len(recs)} line(s), episodes.jsonl has {len(episodes)}")
        out = []
        for i, r in enumerate(recs):
            if r.get("episode_index") != i or not isinstance(r.get("stats"), dict):
                self.add(path, f"line {i + 1}: expected episode_index {i} and a stats object")
                return None
            out.append(r["stats"])
        return out

    def check_stray_files(self, info: dict[str, Any], n: int) -> None:
        chunks = info["chunks_size"]
        expected = {layout.data_file(self.root, i, chunks) for i in range(n)}
        video_keys = [k for k, v in info["features"].items() if v.get("dtype") == "video"]
        expected |= {layout.video_file(self.root, i, k, chunks) for i in range(n) for k in video_keys}
        for top, why in (
            ("data", "LeRobot loads every parquet under data/"),
            ("videos", "not an episode video of this dataset"),
        ):
            base = self.root / top
            if not base.is_dir():
                continue
            for p in sorted(base.rglob("*")):
                if p.is_file() and p not in expected:
                    self.add(p, f"stray file ({why})")

    # ------------------------------------------------------------------ episodes
    def check_parquet(
        self,
        info: dict[str, Any],
        ep: int,
        length: int,
        start: int,
        tasks: dict[int, str] | None,
        ep_rec: dict[str, Any],
    ) -> dict[str, np.ndarray] | None:
        path = layout.data_file(self.root, ep, info["chunks_size"])
        if not path.is_file():
            self.add(path, f"missing (episode {ep})")
            return None
        try:
            table = read_episode_table(path)
        except DatasetError as e:
            self.add(path, str(e).split(": ", 1)[-1])
            return None
        want = column_features(info["features"])
        got = set(table.column_names)
        if set(want) - got:
            self.add(path, f"missing column(s) {sorted(set(want) - got)}")
        if got - set(want):
            self.add(path, f"column(s) {sorted(got - set(want))} not declared in info.json features")
        if table.num_rows != length:
            self.add(path, f"{table.num_rows} rows, episodes.jsonl says length {length}")
            return None
        cols: dict[str, np.ndarray] = {}
        for key, spec in want.items():
            if key not in got:
                continue
            typ = table.schema.field(key).type
            vtype = typ.value_type if (pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ)) else typ
            if str(vtype) != {"float32": "float", "float64": "double", "bool": "bool"}.get(
                spec["dtype"], spec["dtype"]
            ):
                self.add(path, f"column '{key}' has type {typ}, features say {spec['dtype']}")
                continue
            try:
                arr = column_to_numpy(table, key)
            except ValueError as e:
                self.add(path, str(e))
                continue
            n = spec["shape"][0]
            if (arr.ndim == 1 and n != 1) or (arr.ndim == 2 and arr.shape[1] != n):
                self.add(path, f"column '{key}' has vectors of length {arr.shape[1:] or 1}, shape says {n}")
                continue
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                bad = int(np.argmax(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)))
                self.add(path, f"column '{key}' has NaN/inf values (first at row {bad})")
            cols[key] = arr
        k = np.arange(length)
        self._expect_equal(path, cols, "frame_index", k, "is not 0..length-1")
        self._expect_equal(path, cols, "episode_index", np.full(length, ep), f"is not {ep} in every row")
        self._expect_equal(
            path,
            cols,
            "index",
            start + k,
            f"is not contiguous: expected {start}..{start + length - 1} (global index)",
        )
        if "timestamp" in cols:
            err = np.abs(cols["timestamp"].astype(np.float64) - k / info["fps"])
            if err.max(initial=0.0) > layout.TOLERANCE_S:
                row = int(np.argmax(err > layout.TOLERANCE_S))
                self.add(
                    path,
                    f"timestamp at row {row} is {float(cols['timestamp'][row]):.6f}, expected "
                    f"frame_index/fps = {row / info['fps']:.6f} (tolerance {layout.TOLERANCE_S:g} s)",
                )
        if "task_index" in cols and tasks is not None:
            used = set(np.unique(cols["task_index"]).tolist())
            unknown = sorted(used - set(tasks))
            if unknown:
                self.add(path, f"task_index value(s) {unknown} not in tasks.jsonl")
            elif isinstance(ep_rec.get("tasks"), list) and {tasks[t] for t in used} != set(ep_rec["tasks"]):
                self.add(
                    path,
                    f"tasks used {sorted(tasks[t] for t in used)} differ from episodes.jsonl "
                    f"{sorted(ep_rec['tasks'])}",
                )
        return cols

    def _expect_equal(
        self, path: Path, cols: dict[str, np.ndarray], key: str, want: np.ndarray, reason: str
    ) -> None:
        if key in cols and not np.array_equal(cols[key], want):
            row = int(np.argmax(cols[key] != want))
            self.add(path, f"{key} {reason} (row {row} has {cols[key][row]}, expected {want[row]})")

    def check_video(self, info: dict[str, Any], ep: int, key: str, length: int) -> list[np.ndarray] | None:
        path = layout.video_file(self.root, ep, key, info["chunks_size"])
        if not path.is_file():
            self.add(path, f"missing (episode {ep}, {key})")
            return None
        try:
            pr = probe(path)
        except DatasetError as e:
            self.add(path, str(e).split(": ", 1)[-1])
            return None
        vinfo = info["features"][key]["info"]
        h, w = info["features"][key]["shape"][:2]
        if pr.num_streams != 1:
            self.add(path, f"{pr.num_streams} streams, expected exactly one video stream")
        if pr.codec != vinfo["video.codec"]:
            self.add(path, f"codec {pr.codec}, info.json says {vinfo['video.codec']}")
        if pr.pix_fmt != vinfo["video.pix_fmt"]:
            self.add(path, f"pix_fmt {pr.pix_fmt}, info.json says {vinfo['video.pix_fmt']}")
        if (pr.width, pr.height) != (w, h):
            self.add(path, f"size {pr.width}x{pr.height}, features say {w}x{h}")
        if pr.average_rate is not None and pr.average_rate != info["fps"]:
            self.add(path, f"average frame rate {float(pr.average_rate):g}, dataset fps is {info['fps']}")
        if pr.duration_s is not None and abs(pr.duration_s - length / info["fps"]) > DURATION_TOL_S:
            self.add(
                path,
                f"stream duration {pr.duration_s:.4f} s, expected length/fps = {length / info['fps']:.4f} s",
            )
        sig = (pr.codec, pr.pix_fmt, pr.width, pr.height, pr.time_base)
        first = self.first_probe.get(key)
        if first is None:
            self.first_probe[key] = (str(path), pr)
        else:
            fp = first[1]
            if sig != (fp.codec, fp.pix_fmt, fp.width, fp.height, fp.time_base):
                self.add(
                    path,
                    f"codec/pix_fmt/size/time base {sig[:4]} {sig[4]} differ from {first[0]} "
                    "(all episodes of a camera must match for v3 conversion)",
                )
        if not self.decode:
            return None
        picks = set(sample_indices(length))
        sampled: list[np.ndarray] = []
        count = 0
        fps = info["fps"]
        try:
            for pts, img in iter_frames(path):
                if count < length and abs(pts - count / fps) >= layout.TOLERANCE_S:
                    self.add(
                        path,
                        f"frame {count} has pts {pts:.6f} s, expected {count / fps:.6f} s "
                        "(video must be CFR starting at 0)",
                    )
                    return None
                if count in picks:
                    sampled.append(img)
                count += 1
        except DatasetError as e:
            self.add(path, str(e).split(": ", 1)[-1] + f" after {count} frame(s)")
            return None
        self.report.videos_decoded += 1
        if count != length:
            self.add(path, f"{count} frames decoded, episode length is {length}")
            return None
        return sampled

    def check_episode_stats(
        self,
        info: dict[str, Any],
        ep: int,
        length: int,
        stats: dict[str, Any],
        cols: dict[str, np.ndarray] | None,
        sampled: dict[str, list[np.ndarray] | None],
    ) -> None:
        path = self.root / layout.EPISODES_STATS_PATH
        for key, spec in info["features"].items():
            where = f"episode {ep} stats of '{key}'"
            st = stats.get(key)
            if not isinstance(st, dict):
                self.add(path, f"{where}: missing")
                continue
            if spec["dtype"] == "video":
                n_samples = estimate_num_samples(length)
                shape_ok = self._stat_shapes(path, where, st, (3, 1, 1), n_samples)
                frames = sampled.get(key)
                if shape_ok:
                    mn, mean, mx = (np.asarray(st[k], dtype=np.float64) for k in ("min", "mean", "max"))
                    if not (
                        np.all(mn >= 0)
                        and np.all(mn <= mean + 1e-9)
                        and np.all(mean <= mx + 1e-9)
                        and np.all(mx <= 1)
                    ):
                        self.add(
                            path, f"{where}: expected 0 <= min <= mean <= max <= 1 (values scaled to 0..1)"
                        )
                if shape_ok and frames is not None and len(frames) == len(sample_indices(length)):
                    fresh = image_stats_from_frames(frames)
                    for reason in compare_stats(st, fresh, atol=IMAGE_ATOL, rtol=0.0, keys=("mean", "std")):
                        self.add(
                            path,
                            f"{where}: {reason} (vs decoded video; lossy encoding of noisy/textured frames "
                            "shifts these, LeRobot does not check them)",
                            warning=not self.strict,
                        )
            else:
                if not self._stat_shapes(path, where, st, (spec["shape"][0],), length):
                    continue
                if cols is not None and key in cols:
                    fresh = numeric_stats(cols[key])
                    for reason in compare_stats(st, fresh, atol=NUMERIC_ATOL):
                        self.add(path, f"{where}: {reason}")

    def _stat_shapes(
        self, path: Path, where: str, st: dict[str, Any], shape: tuple[int, ...], count: int
    ) -> bool:
        ok = True
        for k in ("min", "max", "mean", "std"):
            try:
                arr = np.asarray(st.get(k), dtype=np.float64)
            except (TypeError, ValueError):
                self.add(path, f"{where}: '{k}' is not numeric")
                ok = False
                continue
            if arr.shape != shape:
                self.add(path, f"{where}: '{k}' has shape {arr.shape}, expected {shape}")
                ok = False
            elif not np.all(np.isfinite(arr)):
                self.add(path, f"{where}: '{k}' has NaN/inf")
                ok = False
        if st.get("count") != [count]:
            self.add(path, f"{where}: count {st.get('count')!r}, expected [{count}]")
            ok = False
        return ok

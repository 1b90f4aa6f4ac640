"""Shared helpers of the LeRobot compatibility checks (run inside .venv-compat-033 / .venv-compat-04x).

Not a pytest module: ``make compat`` (scripts/compat.sh) runs the ``check_*.py`` scripts directly.

The reference a check compares against is an ``.npz`` written by ``dump_reference.py`` in the project
venv: every frame as the project's own reader returns it (numeric columns, task, decoded images) plus
the synthetic source pictures the writer was given.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# Decoded-frame tolerances, in 8-bit levels. LeRobot (PyAV via torchvision) and the project's reader
# (PyAV) decode the same mp4; only the YUV->RGB conversion of two FFmpeg builds may differ slightly.
DECODE_MAX_ABS = 3
DECODE_MEAN_ABS = 0.6
# Against the pictures fed to the encoder (lossy codec): mean error per frame, and the frame must be
# closer to its own source than to the neighbouring frames' (catches a one-frame shift).
SOURCE_MEAN_ABS = 8.0

_TORCHVISION_SHIM: Any = None


class CheckFailed(Exception):
    """A compatibility check did not hold."""


def install_torchvision_shim() -> str | None:
    """Make ``import torchvision`` work on a CPU-only torch whose version the wheel was not built for.

    PyPI's Linux torchvision wheels are CUDA builds; their ``_C.so`` needs libtorch_cuda/libc10_cuda,
    which a CPU torch does not have, so the extension does not load. torchvision then still imports
    everything pure Python (what LeRobot's dataset code uses: ``transforms``, and
    ``io.VideoReader`` with the PyAV backend) except that ``_meta_registrations`` unconditionally
    registers a fake kernel for ``torchvision::nms``, which fails when the op was never defined.
    Defining just that op's schema (no kernel) lets the import finish. Only done when ``_C`` really
    cannot be loaded. Must run before anything imports torchvision. Returns a note, or None.
    """
    global _TORCHVISION_SHIM
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    libs = []
    for loc in spec.submodule_search_locations:
        libs += glob.glob(os.path.join(loc, "_C*.so"))
    if libs:
        try:
            torch.ops.load_library(libs[0])
            return None
        except OSError:
            pass
    if _TORCHVISION_SHIM is None:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_SHIM = lib
    warnings.filterwarnings("ignore", message="Failed to load image Python extension")
    warnings.filterwarnings("ignore", message=".*video decoding and encoding capabilities of torchvision.*")
    return "torchvision C extension not loadable with this CPU torch: defined torchvision::nms schema only"


def require_offline() -> None:
    """The checks must never reach the Hub: refuse to run unless offline mode is set."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var) != "1":
            raise CheckFailed(f"{var}=1 must be set (the checks must not reach the Hugging Face Hub)")


class Reference:
    """The project reader's view of a dataset (from ``dump_reference.py``)."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            self.meta: dict[str, Any] = json.loads(str(z["meta"]))
            self.arrays = {k: z[k] for k in z.files if k != "meta"}
        self.fps: int = int(self.meta["fps"])
        self.cameras: list[str] = list(self.meta["camera_keys"])
        self.extras: list[str] = list(self.meta["extra_keys"])
        self.lengths: list[int] = [int(n) for n in self.meta["lengths"]]
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self.tasks: list[str] = [str(t) for t in self.arrays["task"]]

    @property
    def num_frames(self) -> int:
        return int(self.starts[-1])

    def col(self, name: str) -> np.ndarray:
        return self.arrays[f"col/{name}"]

    def image(self, camera: str, index: int) -> np.ndarray:
        return self.arrays[f"img/{camera}"][index]

    def source(self, camera: str, index: int) -> np.ndarray:
        return self.arrays[f"src/{camera}"][index]

    def episode_of(self, index: int) -> tuple[int, int, int]:
        """(episode, start, stop) of a global frame index."""
        ep = int(np.searchsorted(self.starts, index, side="right") - 1)
        return ep, int(self.starts[ep]), int(self.starts[ep + 1])


class Report:
    """Collects failures so one run reports all of them; ``finish`` exits non-zero if any."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failures: list[str] = []
        self.passed = 0

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
            if len(self.failures) <= 40:
                print(f"  FAIL {what}", flush=True)
        return ok

    def info(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def finish(self) -> int:
        if self.failures:
            print(f"[{self.name}] FAILED: {len(self.failures)} failed check(s), {self.passed} passed")
            return 1
        print(f"[{self.name}] OK: {self.passed} checks passed")
        return 0


def to_numpy(x: Any) -> np.ndarray:
    """A torch tensor / number / array as a numpy array."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def lerobot_image_to_uint8(x: Any) -> np.ndarray:
    """LeRobot's decoded frame (float32 CHW in [0, 1]) as HWC uint8."""
    a = to_numpy(x)
    if a.ndim != 3 or a.shape[0] != 3:
        raise CheckFailed(f"decoded frame has shape {a.shape}, expected (3, H, W)")
    return np.clip(np.rint(a.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def compare_item(rep: Report, ref: Reference, item: dict[str, Any], index: int, label: str) -> None:
    """Compare one LeRobot item with the reference frame ``index`` (numeric columns, task, images)."""
    ep, start, _ = ref.episode_of(index)
    fi = index - start
    where = f"{label} index {index} (episode {ep} frame {fi})"
    for key in ("index", "episode_index", "frame_index", "task_index"):
        got = to_numpy(item[key]).reshape(-1)
        rep.check(
            got.size == 1 and int(got[0]) == int(ref.col(key)[index]),
            f"{where}: {key} = {got.tolist()}, reference {int(ref.col(key)[index])}",
        )
    ts = to_numpy(item["timestamp"]).reshape(-1)
    rep.check(
        ts.size == 1 and abs(float(ts[0]) - float(ref.col("timestamp")[index])) < 1e-6,
        f"{where}: timestamp = {ts.tolist()}, reference {float(ref.col('timestamp')[index])}",
    )
    rep.check(
        ts.size == 1 and abs(float(ts[0]) - fi / ref.fps) < 1e-4,
        f"{where}: timestamp {ts.tolist()} is not frame_index/fps = {fi / ref.fps}",
    )
    for key in ["observation.state", "action", *ref.extras]:
        got = to_numpy(item[key])
        want = ref.col(key)[index]
        rep.check(
            got.dtype == want.dtype
            and got.reshape(-1).shape == want.reshape(-1).shape
            and np.array_equal(got.reshape(-1), want.reshape(-1)),
            f"{where}: {key} = {got.tolist()} ({got.dtype}), reference {want.tolist()} ({want.dtype})",
        )
    for key in ("observation.state", "action"):
        got = to_numpy(item[key]).reshape(-1)
        fed = ref.arrays[f"srccol/{key}"][index]
        rep.check(
            got.shape == fed.shape and np.array_equal(got, fed),
            f"{where}: {key} = {got.tolist()}, but the writer was given {fed.tolist()}",
        )
    rep.check(
        item.get("task") == ref.tasks[index], f"{where}: task {item.get('task')!r}, want {ref.tasks[index]!r}"
    )
    for cam in ref.cameras:
        try:
            got = lerobot_image_to_uint8(item[cam])
        except CheckFailed as e:
            rep.check(False, f"{where}: {cam}: {e}")
            continue
        want = ref.image(cam, index)
        if not rep.check(
            got.shape == want.shape, f"{where}: {cam} shape {got.shape}, reference {want.shape}"
        ):
            continue
        diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
        rep.check(
            int(diff.max()) <= DECODE_MAX_ABS and float(diff.mean()) <= DECODE_MEAN_ABS,
            f"{where}: {cam} differs from the project reader's frame: max {int(diff.max())} "
            f"mean {float(diff.mean()):.3f} levels (allowed {DECODE_MAX_ABS} / {DECODE_MEAN_ABS})",
        )
        own = _mae(got, ref.source(cam, index))
        rep.check(
            own <= SOURCE_MEAN_ABS,
            f"{where}: {cam} mean error vs the source picture {own:.2f} > {SOURCE_MEAN_ABS}",
        )
        for nb in (index - 1, index + 1):
            if start <= nb < start + ref.lengths[ep]:
                other = _mae(got, ref.source(cam, nb))
                rep.check(
                    own < other,
                    f"{where}: {cam} is closer to source frame {nb - start} ({other:.2f}) than to its "
                    f"own ({own:.2f}): frames shifted",
                )


def check_windows(rep: Report, ref: Reference, ds: Any, horizon: int, label: str) -> None:
    """``ds`` was built with delta_timestamps: state at [-1/fps, 0], action at [0 .. horizon-1]/fps.

    LeRobot clamps out-of-episode steps to the episode edge and flags them in ``<key>_is_pad``.
    """
    state, action = ref.col("observation.state"), ref.col("action")
    for index in range(ref.num_frames):
        ep, start, stop = ref.episode_of(index)
        item = ds[index]
        where = f"{label} window at index {index} (episode {ep})"
        want_idx = np.arange(index, index + horizon)
        want_pad = want_idx >= stop
        want = action[np.minimum(want_idx, stop - 1)]
        got = to_numpy(item["action"])
        rep.check(
            got.shape == want.shape and np.array_equal(got, want),
            f"{where}: action chunk {got.shape} differs from the reference chunk {want.shape}",
        )
        pad = to_numpy(item["action_is_pad"]).astype(bool)
        rep.check(
            np.array_equal(pad, want_pad), f"{where}: action_is_pad {pad.tolist()}, want {want_pad.tolist()}"
        )
        prev = max(index - 1, start)
        want_s = state[[prev, index]]
        got_s = to_numpy(item["observation.state"])
        rep.check(
            got_s.shape == want_s.shape and np.array_equal(got_s, want_s),
            f"{where}: observation.state history differs from the reference",
        )
        s_pad = to_numpy(item["observation.state_is_pad"]).astype(bool)
        rep.check(
            s_pad.tolist() == [index == start, False],
            f"{where}: observation.state_is_pad {s_pad.tolist()}, want {[index == start, False]}",
        )


def check_stats(rep: Report, ref: Reference, stats: dict[str, dict[str, Any]], label: str) -> None:
    """Dataset-level stats as LeRobot sees them (aggregated from the writer's per-episode stats)."""
    for key in ["observation.state", "action", *ref.extras]:
        if not rep.check(key in stats, f"{label}: no stats for {key}"):
            continue
        data = ref.col(key).astype(np.float64).reshape(ref.num_frames, -1)
        s = {k: to_numpy(v).astype(np.float64).reshape(-1) for k, v in stats[key].items()}
        for name, want, tol in (
            ("min", data.min(0), 1e-6),
            ("max", data.max(0), 1e-6),
            ("mean", data.mean(0), 1e-5),
            ("std", data.std(0), 1e-4),
        ):
            got = s.get(name)
            rep.check(
                got is not None
                and got.shape == want.shape
                and bool(np.allclose(got, want, atol=tol, rtol=0)),
                f"{label}: stats[{key}][{name}] = {None if got is None else got.tolist()}, "
                f"recomputed {want.tolist()}",
            )
    for cam in ref.cameras:
        if not rep.check(cam in stats, f"{label}: no stats for {cam}"):
            continue
        imgs = ref.arrays[f"src/{cam}"].astype(np.float64) / 255.0
        want_mean = imgs.mean(axis=(0, 1, 2))
        got = to_numpy(stats[cam]["mean"]).astype(np.float64)
        rep.check(
            got.shape == (3, 1, 1) and bool(np.allclose(got.reshape(3), want_mean, atol=0.02)),
            f"{label}: stats[{cam}][mean] = {got.reshape(-1).tolist()} (shape {got.shape}), "
            f"source pictures' channel means {want_mean.tolist()}",
        )


def main_guard(fn: Any) -> None:
    """Run ``fn() -> int`` and exit with its status; a CheckFailed is reported as one line."""
    try:
        code = fn()
    except CheckFailed as e:
        print(f"FAILED: {e}")
        code = 1
    sys.exit(code)

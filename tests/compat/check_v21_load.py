"""lerobot==0.3.3 (the last LeRobot that reads v2.1) loads a dataset written by the project's writer.

Runs in .venv-compat-033, offline (HF_HUB_OFFLINE=1). Builds ``LeRobotDataset`` from the local
folder with the PyAV video backend and checks metadata, aggregated stats, every frame (numeric
columns exactly, task string, decoded images against the project's reader and the source pictures),
training windows built with ``delta_timestamps``, a one-episode subset, and a DataLoader pass.

Usage: python tests/compat/check_v21_load.py DATASET_DIR REFERENCE.npz
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path
from typing import Any

from compat_common import (
    CheckFailed,
    Reference,
    Report,
    check_stats,
    check_windows,
    compare_item,
    install_torchvision_shim,
    main_guard,
    require_offline,
    to_numpy,
)

HORIZON = 5


def run(root: Path, ref_path: Path) -> int:
    require_offline()
    note = install_torchvision_shim()
    import lerobot
    import torch
    from lerobot.datasets.lerobot_dataset import CODEBASE_VERSION, LeRobotDataset

    rep = Report(f"lerobot {lerobot.__version__} v2.1 load {root.name}")
    print(f"[{rep.name}] torch {torch.__version__}; {note or 'torchvision loaded normally'}")
    if CODEBASE_VERSION != "v2.1":
        raise CheckFailed(f"this LeRobot reads {CODEBASE_VERSION}, not v2.1 (wrong venv?)")
    ref = Reference(ref_path)
    repo_id = f"local/{root.name}"

    t0 = time.monotonic()
    try:
        ds = LeRobotDataset(repo_id, root=root, video_backend="pyav")
    except Exception as e:
        raise CheckFailed(
            f"LeRobotDataset({repo_id!r}, root={str(root)!r}) raised {type(e).__name__}: {e}"
        ) from e
    rep.info(
        f"loaded in {time.monotonic() - t0:.1f} s: {ds.num_episodes} episode(s), {ds.num_frames} frame(s)"
    )

    meta = ds.meta
    rep.check(
        meta.info.get("codebase_version") == "v2.1", f"codebase_version {meta.info.get('codebase_version')}"
    )
    rep.check(ds.fps == ref.fps, f"fps {ds.fps}, written {ref.fps}")
    rep.check(meta.robot_type == ref.meta["robot_type"], f"robot_type {meta.robot_type!r}")
    rep.check(
        ds.num_episodes == len(ref.lengths), f"num_episodes {ds.num_episodes}, written {len(ref.lengths)}"
    )
    rep.check(ds.num_frames == ref.num_frames, f"num_frames {ds.num_frames}, written {ref.num_frames}")
    rep.check(len(ds) == ref.num_frames, f"len(dataset) {len(ds)}, written {ref.num_frames}")
    rep.check(list(meta.video_keys) == ref.cameras, f"video_keys {meta.video_keys}, written {ref.cameras}")
    rep.check(list(meta.camera_keys) == ref.cameras, f"camera_keys {meta.camera_keys}, written {ref.cameras}")
    written = ref.meta["features"]
    rep.check(
        set(meta.features) == set(written), f"features {sorted(meta.features)}, written {sorted(written)}"
    )
    for key, spec in written.items():
        got = meta.features.get(key, {})
        rep.check(got.get("dtype") == spec["dtype"], f"features[{key}].dtype {got.get('dtype')}")
        rep.check(
            tuple(got.get("shape", ())) == tuple(spec["shape"]), f"features[{key}].shape {got.get('shape')}"
        )
    for cam in ref.cameras:
        h, w, c = meta.shapes[cam]
        img = ref.image(cam, 0)
        rep.check((h, w, c) == img.shape, f"{cam}: shape {(h, w, c)} vs decoded {img.shape}")
        rep.check(
            list(meta.features[cam].get("names") or []) == ["height", "width", "channels"],
            f"{cam}: names {meta.features[cam].get('names')} (policies take names[2] to find the channel axis)",
        )
    lengths = [int(meta.episodes[ep]["length"]) for ep in range(ds.num_episodes)]
    rep.check(lengths == ref.lengths, f"episode lengths {lengths}, written {ref.lengths}")
    starts = to_numpy(ds.episode_data_index["from"]).tolist()
    stops = to_numpy(ds.episode_data_index["to"]).tolist()
    rep.check(
        starts == ref.starts[:-1].tolist() and stops == ref.starts[1:].tolist(),
        f"episode_data_index from {starts} to {stops}",
    )
    tasks = [meta.tasks[i] for i in sorted(meta.tasks)]
    rep.check(tasks == ref.meta["tasks"], f"tasks {tasks}, written {ref.meta['tasks']}")
    check_stats(rep, ref, meta.stats, "meta.stats")

    t0 = time.monotonic()
    for index in range(len(ds)):
        compare_item(rep, ref, ds[index], index, "item")
    rep.info(f"compared all {len(ds)} items in {time.monotonic() - t0:.1f} s")

    # The comparison must be able to fail: an item compared with its neighbour's reference frame.
    _probe_shift(rep, ref, ds)

    last = len(ref.lengths) - 1
    sub = LeRobotDataset(repo_id, root=root, episodes=[last], video_backend="pyav")
    rep.check(len(sub) == ref.lengths[last], f"episodes=[{last}]: {len(sub)} items, want {ref.lengths[last]}")
    for k in range(len(sub)):
        compare_item(rep, ref, sub[k], int(ref.starts[last]) + k, f"episodes=[{last}] item {k}:")

    deltas = {
        "observation.state": [-1 / ref.fps, 0.0],
        "action": [k / ref.fps for k in range(HORIZON)],
    }
    win = LeRobotDataset(repo_id, root=root, delta_timestamps=deltas, video_backend="pyav")
    check_windows(rep, ref, win, HORIZON, "delta_timestamps")

    import torch.utils.data

    seen: list[int] = []
    for batch in torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False, num_workers=0):
        seen += to_numpy(batch["index"]).tolist()
        rep.check(len(batch["task"]) == len(to_numpy(batch["index"])), "DataLoader: task list length")
    rep.check(
        seen == list(range(ref.num_frames)), f"DataLoader visited {len(seen)} items out of order or short"
    )
    return rep.finish()


def _probe_shift(rep: Report, ref: Reference, ds: Any) -> None:
    """Self-test: frame 1 compared against reference frame 0 must fail (images/columns differ)."""
    if ref.lengths[0] < 2:
        return
    probe = Report("self-test")
    with contextlib.redirect_stdout(io.StringIO()):
        compare_item(probe, ref, ds[1], 0, "self-test")
    rep.check(
        len(probe.failures) > 0, "self-test: item 1 compared with reference frame 0 showed no difference"
    )
    shifted = [f for f in probe.failures if "closer to source frame" in f or "differs from the project" in f]
    rep.check(
        not ref.cameras or len(shifted) > 0,
        "self-test: a one-frame image shift was not detected by the image comparison",
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    main_guard(lambda: run(Path(sys.argv[1]).resolve(), Path(sys.argv[2])))

"""LeRobot 0.4.x converts a project-written v2.1 dataset to v3.0 offline, and the result loads.

Runs in .venv-compat-04x, offline (HF_HUB_OFFLINE=1). Copies the dataset to
``WORK_DIR/local/<name>``, checks that this LeRobot refuses the v2.1 original (it only reads v3.0),
runs LeRobot's own converter as a user would (``python -m
lerobot.datasets.v30.convert_dataset_v21_to_v30 --repo-id=local/<name> --root=WORK_DIR
--push-to-hub=false``, through run_module.py for the torchvision shim), then loads the converted
dataset and checks metadata, per-episode video spans, stats, every frame against the project's
reader, ``delta_timestamps`` windows and a one-episode subset.

Usage: python tests/compat/check_v30_convert.py DATASET_DIR REFERENCE.npz WORK_DIR
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
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
)

CONVERTER = "lerobot.datasets.v30.convert_dataset_v21_to_v30"
HORIZON = 5


def run(src: Path, ref_path: Path, work: Path) -> int:
    require_offline()
    note = install_torchvision_shim()
    import lerobot
    import torch
    from lerobot.datasets.backward_compatibility import BackwardCompatibilityError
    from lerobot.datasets.lerobot_dataset import CODEBASE_VERSION, LeRobotDataset

    rep = Report(f"lerobot {lerobot.__version__} v2.1->v3.0 {src.name}")
    print(f"[{rep.name}] torch {torch.__version__}; {note or 'torchvision loaded normally'}")
    if CODEBASE_VERSION != "v3.0":
        raise CheckFailed(f"this LeRobot reads {CODEBASE_VERSION}, not v3.0 (wrong venv?)")
    ref = Reference(ref_path)
    repo_id = f"local/{src.name}"
    root = work / repo_id
    if root.exists() or (work / "local" / f"{src.name}_old").exists():
        shutil.rmtree(work / "local")
    shutil.copytree(src, root)

    try:
        LeRobotDataset(repo_id, root=root, video_backend="pyav")
        rep.check(False, "LeRobot 0.4.x loaded the v2.1 dataset without conversion (expected a refusal)")
    except BackwardCompatibilityError:
        rep.check(True, "0.4.x refuses v2.1")

    cmd = [
        sys.executable,
        str(Path(__file__).with_name("run_module.py")),
        CONVERTER,
        f"--repo-id={repo_id}",
        f"--root={work}",
        "--push-to-hub=false",
    ]
    print(f"[{rep.name}] $ {' '.join(cmd[1:])}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)
    log = proc.stdout + proc.stderr
    (work / f"convert_{src.name}.log").write_text(log)
    if proc.returncode != 0:
        print("\n".join(log.splitlines()[-25:]))
        raise CheckFailed(
            f"the converter exited with {proc.returncode} (log: {work / f'convert_{src.name}.log'})"
        )
    rep.info(
        f"converted in {time.monotonic() - t0:.1f} s; original kept at {work / 'local' / (src.name + '_old')}"
    )

    info = json.loads((root / "meta" / "info.json").read_text())
    rep.check(
        info.get("codebase_version") == "v3.0", f"converted codebase_version {info.get('codebase_version')}"
    )
    rep.check(
        info.get("total_episodes") == len(ref.lengths),
        f"converted total_episodes {info.get('total_episodes')}",
    )
    rep.check(
        info.get("total_frames") == ref.num_frames, f"converted total_frames {info.get('total_frames')}"
    )
    rep.check(info.get("fps") == ref.fps, f"converted fps {info.get('fps')}")

    try:
        ds = LeRobotDataset(repo_id, root=root, video_backend="pyav")
    except Exception as e:
        raise CheckFailed(f"loading the converted dataset raised {type(e).__name__}: {e}") from e
    meta = ds.meta
    rep.check(ds.fps == ref.fps, f"fps {ds.fps}, written {ref.fps}")
    rep.check(ds.num_episodes == len(ref.lengths), f"num_episodes {ds.num_episodes}")
    rep.check(ds.num_frames == ref.num_frames and len(ds) == ref.num_frames, f"num_frames {ds.num_frames}")
    rep.check(list(meta.video_keys) == ref.cameras, f"video_keys {meta.video_keys}, written {ref.cameras}")
    rep.check(
        set(meta.features) == set(ref.meta["features"]),
        f"features {sorted(meta.features)}, written {sorted(ref.meta['features'])}",
    )
    eps = meta.episodes
    lengths = [int(n) for n in eps["length"]]
    rep.check(lengths == ref.lengths, f"episode lengths {lengths}, written {ref.lengths}")
    rep.check(
        [int(n) for n in eps["dataset_from_index"]] == ref.starts[:-1].tolist()
        and [int(n) for n in eps["dataset_to_index"]] == ref.starts[1:].tolist(),
        "dataset_from_index/dataset_to_index do not match the written episode boundaries",
    )
    for cam in ref.cameras:
        _check_video_spans(rep, ref, eps, cam)
    tasks = sorted(meta.tasks.index.tolist(), key=lambda t: int(meta.tasks.loc[t, "task_index"]))
    rep.check(tasks == ref.meta["tasks"], f"tasks {tasks}, written {ref.meta['tasks']}")
    check_stats(rep, ref, meta.stats, "converted meta/stats.json")

    t0 = time.monotonic()
    for index in range(len(ds)):
        compare_item(rep, ref, ds[index], index, "converted item")
    rep.info(f"compared all {len(ds)} items in {time.monotonic() - t0:.1f} s")

    if ref.lengths[0] > 1:
        probe = Report("self-test")
        with contextlib.redirect_stdout(io.StringIO()):
            compare_item(probe, ref, ds[1], 0, "self-test")
        rep.check(
            len(probe.failures) > 0, "self-test: item 1 compared with reference frame 0 showed no difference"
        )

    last = len(ref.lengths) - 1
    sub = LeRobotDataset(repo_id, root=root, episodes=[last], video_backend="pyav")
    rep.check(len(sub) == ref.lengths[last], f"episodes=[{last}]: {len(sub)} items, want {ref.lengths[last]}")
    for k in range(len(sub)):
        compare_item(rep, ref, sub[k], int(ref.starts[last]) + k, f"converted episodes=[{last}] item {k}:")

    deltas = {
        "observation.state": [-1 / ref.fps, 0.0],
        "action": [k / ref.fps for k in range(HORIZON)],
    }
    win = LeRobotDataset(repo_id, root=root, delta_timestamps=deltas, video_backend="pyav")
    check_windows(rep, ref, win, HORIZON, "converted delta_timestamps")
    return rep.finish()


def _check_video_spans(rep: Report, ref: Reference, eps: Any, cam: str) -> None:
    """Each episode's [from, to) span in the concatenated mp4 must be exactly length/fps long and
    follow the previous one: the converter takes it from each source mp4's duration."""
    col_from, col_to = f"videos/{cam}/from_timestamp", f"videos/{cam}/to_timestamp"
    if not rep.check(col_from in eps.column_names, f"{cam}: no {col_from} in the converted episodes"):
        return
    froms = [float(x) for x in eps[col_from]]
    tos = [float(x) for x in eps[col_to]]
    files = [int(x) for x in eps[f"videos/{cam}/file_index"]]
    for ep, n in enumerate(ref.lengths):
        rep.check(
            abs((tos[ep] - froms[ep]) - n / ref.fps) < 1e-4,
            f"{cam} episode {ep}: span {froms[ep]:.6f}..{tos[ep]:.6f} s = {tos[ep] - froms[ep]:.6f} s, "
            f"want length/fps = {n / ref.fps:.6f} s (source mp4 duration differs)",
        )
        if ep > 0 and files[ep] == files[ep - 1]:
            rep.check(
                abs(froms[ep] - tos[ep - 1]) < 1e-9,
                f"{cam} episode {ep}: starts at {froms[ep]} but episode {ep - 1} ends at {tos[ep - 1]}",
            )


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    main_guard(lambda: run(Path(sys.argv[1]).resolve(), Path(sys.argv[2]), Path(sys.argv[3]).resolve()))

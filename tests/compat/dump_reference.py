"""Write the project's view of a synthetic dataset to an .npz for the LeRobot compatibility checks.

Runs in the project venv (``.venv``): every frame through ``recording.dataset.reader.LeRobotReader``
(numeric columns, task, images decoded by the project's decoder) plus the synthetic pictures and joint
vectors that ``evo1 dataset synth`` fed to the writer (``recording.dataset.synth``), so the checks in the
compat venvs can compare LeRobot's output with both.

Usage: python tests/compat/dump_reference.py DATASET_DIR OUT.npz
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from recording.dataset.reader import LeRobotReader
from recording.dataset.synth import synthetic_image, synthetic_joints


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    root, out = Path(argv[0]), Path(argv[1])
    r = LeRobotReader(root)
    cams = r.features.cameras
    arrays: dict[str, np.ndarray] = {}
    for key in [
        "observation.state",
        "action",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    ]:
        arrays[f"col/{key}"] = r.column(key)
    for ex in r.features.extras:
        arrays[f"col/{ex.key}"] = r.column(ex.key)
    # What synth fed the writer: state = joints(e, k), action = joints(e, k + 1) (recording/dataset/synth.py).
    n_s, n_a = len(r.features.state_names), len(r.features.action_names)
    ep_k = [(ep, k) for ep in range(r.num_episodes) for k in range(r.episode_length(ep))]
    arrays["srccol/observation.state"] = np.stack([synthetic_joints(e, k, n_s, r.fps) for e, k in ep_k])
    arrays["srccol/action"] = np.stack([synthetic_joints(e, k + 1, n_a, r.fps) for e, k in ep_k])
    arrays["task"] = np.array([r.tasks[int(t)] for t in r.column("task_index")], dtype=np.str_)
    for ci, cam in enumerate(cams):
        decoded, source = [], []
        for ep in range(r.num_episodes):
            a, b = r.episode_bounds(ep)
            decoded.append(r.decode_video(ep, cam.name, r.column("timestamp")[a:b]))
            source += [synthetic_image(ci, ep, k, cam.height, cam.width) for k in range(b - a)]
        arrays[f"img/{cam.key}"] = np.concatenate(decoded)
        arrays[f"src/{cam.key}"] = np.stack(source)
    meta = {
        "fps": r.fps,
        "robot_type": r.info.get("robot_type"),
        "lengths": [r.episode_length(ep) for ep in range(r.num_episodes)],
        "camera_keys": [c.key for c in cams],
        "extra_keys": [ex.key for ex in r.features.extras],
        "features": r.info["features"],
        "tasks": [r.tasks[i] for i in sorted(r.tasks)],
    }
    np.savez(out, meta=np.array(json.dumps(meta)), **arrays)
    print(f"reference: {r.num_episodes} episode(s), {r.num_frames} frame(s), {len(cams)} camera(s) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

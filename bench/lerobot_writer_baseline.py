"""LeRobot 0.3.3's own dataset writer, timed on given frames (the baseline of recorder_throughput.py).

Runs inside .venv-compat-033 (lerobot==0.3.3, CPU torch), offline. It imports lerobot, numpy and
the standard library only (plus the torchvision shim from tests/compat/compat_common.py, a
numpy-only helper); never the project's writer. bench/recorder_throughput.py starts it as a
subprocess and hands it the frames it fed its own writer, as an .npz:

  images  uint8 (cameras, pool, H, W, 3)  frame k of camera c is images[c, k % pool]
  state   float32 (episodes, frames, J)   observation.state of each frame
  action  float32 (episodes, frames, J)   action of each frame
  joint_names, camera_names               str arrays

It drives ``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` as ``lerobot record`` does
(an AsyncImageWriter with 4 threads per camera by default: add_frame queues a PNG write, and
save_episode waits for the PNGs, writes the parquet, computes stats and encodes each camera's PNGs
into an mp4), as fast as possible (no frame clock), and writes one JSON object to --out: total wall
and CPU time from the first add_frame to the end of the last save_episode, add_frame p50/p99/max,
per-episode save latency (with how much of it was waiting for PNGs and encoding video), and the
codec actually used.

Codec: LeRobot 0.3.3 always calls ``encode_video_frames(imgs_dir, video_path, fps, overwrite=True)``
with its defaults (libsvtav1, yuv420p, g=2, crf=30); the dataset API has no codec option. With
--vcodec other than libsvtav1 this script rebinds that function in ``lerobot_dataset`` to the same
function with ``vcodec``/``crf`` set (it accepts h264, hevc, libsvtav1); nothing else changes.

Usage: python bench/lerobot_writer_baseline.py --frames-npz F.npz --root DIR --out R.json [options]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from writer_timing import (  # bench/ is sys.path[0]: numpy + PyAV only, safe in the compat venv
    codec_in_file,
    dataset_mb,
    timing_summary,
)

REPO = Path(__file__).resolve().parents[1]
# LeRobot's encode_video_frames accepts these names; PyAV's "h264" encoder is libx264.
VCODEC_FOR_ENCODER = {"libsvtav1": "libsvtav1", "libx264": "h264", "h264": "h264", "libx265": "hevc"}


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 banner per encoder off, as the project's writer does
    sys.path.insert(0, str(REPO / "tests" / "compat"))
    from compat_common import install_torchvision_shim

    shim = install_torchvision_shim()
    import av
    import lerobot
    import lerobot.datasets.lerobot_dataset as lds
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    with np.load(args.frames_npz, allow_pickle=False) as z:
        images = z["images"]
        state, action = z["state"], z["action"]
        joints = [str(s) for s in z["joint_names"]]
        cams = [str(s) for s in z["camera_names"]]
    n_cam, pool, height, width, _ = images.shape
    episodes = min(args.episodes, state.shape[0])
    frames = min(args.frames, state.shape[1])

    vcodec = VCODEC_FOR_ENCODER.get(args.vcodec, args.vcodec)
    encode_kwargs: dict[str, Any] = {}
    if vcodec != "libsvtav1":
        encode_kwargs["vcodec"] = vcodec
    if args.crf is not None:
        encode_kwargs["crf"] = args.crf
    if encode_kwargs:
        lds.encode_video_frames = functools.partial(lds.encode_video_frames, **encode_kwargs)
    encoder_name = av.codec.Codec(vcodec, "w").name

    feats: dict[str, dict[str, Any]] = {
        "observation.state": {"dtype": "float32", "shape": (len(joints),), "names": joints},
        "action": {"dtype": "float32", "shape": (len(joints),), "names": joints},
    }
    keys = [f"observation.images.{c}" for c in cams]
    for key in keys:
        feats[key] = {"dtype": "video", "shape": (height, width, 3), "names": ["height", "width", "channels"]}
    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    threads = args.image_writer_threads_per_camera * n_cam
    ds = LeRobotDataset.create(
        "local/lerobot_writer_baseline",
        fps=args.fps,
        root=root,
        robot_type="xarm6",
        features=feats,
        use_videos=True,
        image_writer_processes=0,
        image_writer_threads=threads,
    )

    # Split save_episode into its two slow parts (wrapping only; the calls are LeRobot's own).
    parts = {"png_wait_s": 0.0, "encode_s": 0.0}

    def timed(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def inner(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                parts[name] += time.perf_counter() - t

        return inner

    ds._wait_image_writer = timed("png_wait_s", ds._wait_image_writer)
    ds.encode_episode_videos = timed("encode_s", ds.encode_episode_videos)

    task = "benchmark"
    add_ms: list[float] = []
    saves: list[dict[str, float]] = []
    cpu0, t0 = os.times(), time.perf_counter()
    for ep in range(episodes):
        for k in range(frames):
            frame: dict[str, Any] = {"observation.state": state[ep, k], "action": action[ep, k]}
            for c, key in enumerate(keys):
                frame[key] = images[c, k % pool]
            a = time.perf_counter()
            ds.add_frame(frame, task=task)
            add_ms.append((time.perf_counter() - a) * 1e3)
        parts["png_wait_s"] = parts["encode_s"] = 0.0
        s = time.perf_counter()
        ds.save_episode()
        saves.append(
            {
                "save_s": round(time.perf_counter() - s, 3),
                "png_wait_s": round(parts["png_wait_s"], 3),
                "encode_s": round(parts["encode_s"], 3),
            }
        )
    t1, cpu1 = time.perf_counter(), os.times()
    ds.stop_image_writer()
    wall = t1 - t0
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    size_mb = dataset_mb(root)
    videos = sorted(root.rglob("*.mp4"))
    in_file = codec_in_file(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    result = {
        "writer": f"lerobot {lerobot.__version__} LeRobotDataset add_frame + save_episode",
        "encoder": encoder_name,
        "codec_in_file": in_file,
        "encoder_options": {
            "vcodec": vcodec,
            "pix_fmt": "yuv420p",
            "g": 2,
            "crf": encode_kwargs.get("crf", 30),
        },
        "image_writer_threads": threads,
        "episodes": episodes,
        "frames_per_episode": frames,
        "frames_total": int(info["total_frames"]),
        "videos": len(videos),
        **timing_summary(episodes, frames, wall, cpu, add_ms, saves),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dataset_mb": round(size_mb, 2),
        "python": platform.python_version(),
        "pyav": av.__version__,
    }
    if shim:
        result["note"] = shim
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames-npz", type=Path, required=True, help="frames and joints (see above)")
    ap.add_argument("--root", type=Path, required=True, help="dataset directory to create (deleted first)")
    ap.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--frames", type=int, default=150, help="frames per episode (default 150)")
    ap.add_argument(
        "--vcodec", default="libsvtav1", help="libsvtav1 (LeRobot's default), libx264/h264, libx265/hevc"
    )
    ap.add_argument("--crf", type=int, default=None, help="override LeRobot's crf (default: its own, 30)")
    ap.add_argument(
        "--image-writer-threads-per-camera",
        type=int,
        default=4,
        help="AsyncImageWriter threads per camera, as lerobot record (default 4; 0 = PNGs written inline)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the dataset directory")
    args = ap.parse_args(argv)
    if args.episodes < 1 or args.frames < 1 or args.fps < 1 or args.image_writer_threads_per_camera < 0:
        print(
            "lerobot_writer_baseline: error: need episodes, frames, fps >= 1 and threads >= 0",
            file=sys.stderr,
        )
        return 2
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

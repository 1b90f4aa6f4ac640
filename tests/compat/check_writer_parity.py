"""The project's writer produces what lerobot==0.3.3's own writer produces for the same frames.

Runs in .venv-compat-033, offline. Feeds the frames that ``evo1 dataset synth`` gave the project's
writer (source pictures, joint vectors, tasks: from the reference .npz) to LeRobot's
``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` and compares the two datasets file by
file: info.json (values and key order), tasks/episodes jsonl, parquet schema (with the HF metadata)
and contents, per-episode stats, and each mp4's container/stream layout (time base, pts, keyframes,
duration, size, pixel format; codec too when the project wrote AV1, LeRobot's only codec).

Extra columns are left out of LeRobot's copy: lerobot 0.3.3 cannot write a shape-[1] user feature
with numpy 2 (``int()`` of a 1-element array), which is LeRobot's limitation, not a format rule.

Usage: python tests/compat/check_writer_parity.py DATASET_DIR REFERENCE.npz OUT_DIR
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from compat_common import (
    CheckFailed,
    Reference,
    Report,
    install_torchvision_shim,
    main_guard,
    require_offline,
)

DEFAULT_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
# Present in the project's dataset by design, not part of the format (the writer's flock file).
KNOWN_EXTRA_FILES = {".evo1_writer.lock"}


def write_with_lerobot(ref: Reference, out: Path) -> Any:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    feats: dict[str, dict[str, Any]] = {}
    for key, spec in ref.meta["features"].items():
        if key in DEFAULT_KEYS or key in ref.extras:
            continue
        feats[key] = {"dtype": spec["dtype"], "shape": tuple(spec["shape"]), "names": spec.get("names")}
    if out.exists():
        shutil.rmtree(out)
    ds = LeRobotDataset.create(
        f"local/{out.name}",
        fps=ref.fps,
        root=out,
        robot_type=ref.meta["robot_type"],
        features=feats,
        use_videos=bool(ref.cameras),
    )
    state, action = ref.arrays["srccol/observation.state"], ref.arrays["srccol/action"]
    for ep, n in enumerate(ref.lengths):
        start = int(ref.starts[ep])
        for k in range(n):
            i = start + k
            frame: dict[str, Any] = {"observation.state": state[i], "action": action[i]}
            for cam in ref.cameras:
                frame[cam] = ref.source(cam, i)
            ds.add_frame(frame, task=ref.tasks[i])
        ds.save_episode()
    return ds


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON text: types matter (15 vs 15.0) and so does key order."""
    return json.dumps(a) == json.dumps(b)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare_info(rep: Report, ref: Reference, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    rep.check(list(ours) == list(theirs), f"info.json key order {list(ours)}, LeRobot {list(theirs)}")
    for key in theirs:
        if key == "features":
            continue
        rep.check(
            _same(ours.get(key), theirs[key]),
            f"info.json {key}: ours {ours.get(key)!r}, LeRobot {theirs[key]!r}",
        )
    our_feats = {k: v for k, v in ours["features"].items() if k not in ref.extras}
    rep.check(
        list(our_feats) == list(theirs["features"]),
        f"info.json feature order {list(our_feats)}, LeRobot {list(theirs['features'])}",
    )
    for key, spec in theirs["features"].items():
        mine = our_feats.get(key, {})
        rep.check(list(mine) == list(spec), f"features[{key}] key order {list(mine)}, LeRobot {list(spec)}")
        for field, value in spec.items():
            if field == "info" and isinstance(value, dict):
                ours_info = mine.get("info") or {}
                rep.check(
                    list(ours_info) == list(value),
                    f"features[{key}].info keys {list(ours_info)}, LeRobot {list(value)}",
                )
                for ik, iv in value.items():
                    if ik == "video.codec" and ours_info.get(ik) != "av1":
                        continue  # LeRobot 0.3.3 always encodes AV1; the project may choose H.264
                    rep.check(
                        _same(ours_info.get(ik), iv),
                        f"features[{key}].info[{ik}]: ours {ours_info.get(ik)!r}, LeRobot {iv!r}",
                    )
            else:
                rep.check(
                    _same(mine.get(field), value),
                    f"features[{key}].{field}: ours {mine.get(field)!r}, LeRobot {value!r}",
                )


def compare_stats(
    rep: Report, ref: Reference, ours: list[dict[str, Any]], theirs: list[dict[str, Any]]
) -> None:
    rep.check(len(ours) == len(theirs), f"episodes_stats.jsonl: {len(ours)} lines, LeRobot {len(theirs)}")
    for a, b in zip(ours, theirs, strict=False):
        ep = b.get("episode_index")
        rep.check(list(a) == list(b), f"episodes_stats episode {ep}: keys {list(a)}, LeRobot {list(b)}")
        sa = {k: v for k, v in a.get("stats", {}).items() if k not in ref.extras}
        sb = b.get("stats", {})
        rep.check(
            list(sa) == list(sb), f"episodes_stats episode {ep}: features {list(sa)}, LeRobot {list(sb)}"
        )
        for key, stat in sb.items():
            mine = sa.get(key, {})
            rep.check(
                list(mine) == list(stat), f"stats ep {ep} {key}: fields {list(mine)}, LeRobot {list(stat)}"
            )
            for field, value in stat.items():
                va, vb = np.asarray(mine.get(field), dtype=np.float64), np.asarray(value, dtype=np.float64)
                rep.check(
                    va.shape == vb.shape and bool(np.allclose(va, vb, rtol=1e-6, atol=1e-6)),
                    f"stats ep {ep} {key}.{field}: ours {va.reshape(-1)[:6].tolist()} {va.shape}, "
                    f"LeRobot {vb.reshape(-1)[:6].tolist()} {vb.shape}",
                )


def compare_parquet(rep: Report, ref: Reference, ours: Path, theirs: Path) -> None:
    import pyarrow.parquet as pq

    ta = pq.read_table(ours)
    ta = ta.drop_columns([c for c in ref.extras if c in ta.column_names])
    tb = pq.read_table(theirs)
    rel = ours.name
    rep.check(
        ta.column_names == tb.column_names, f"{rel}: columns {ta.column_names}, LeRobot {tb.column_names}"
    )
    rep.check(
        ta.schema.remove_metadata().equals(tb.schema.remove_metadata()),
        f"{rel}: arrow schema\n{ta.schema.remove_metadata()}\nLeRobot\n{tb.schema.remove_metadata()}",
    )
    ha = json.loads((pq.read_schema(ours).metadata or {}).get(b"huggingface", b"{}"))
    hb = json.loads((tb.schema.metadata or {}).get(b"huggingface", b"{}"))
    fa = {k: v for k, v in ha.get("info", {}).get("features", {}).items() if k not in ref.extras}
    fb = hb.get("info", {}).get("features", {})
    rep.check(fa == fb, f"{rel}: 'huggingface' schema metadata {fa}, LeRobot {fb}")
    rep.check(ta.equals(tb), f"{rel}: column contents differ from LeRobot's")
    ma, mb = pq.ParquetFile(ours).metadata, pq.ParquetFile(theirs).metadata
    rep.check(
        ma.num_row_groups == mb.num_row_groups,
        f"{rel}: {ma.num_row_groups} row groups, LeRobot {mb.num_row_groups}",
    )
    ca = ma.row_group(0).column(0).compression if ma.num_row_groups else None
    cb = mb.row_group(0).column(0).compression if mb.num_row_groups else None
    rep.check(ca == cb, f"{rel}: compression {ca}, LeRobot {cb}")


def _video_layout(path: Path) -> dict[str, Any]:
    import av

    with av.open(str(path)) as c:
        st = c.streams.video[0]
        cc = st.codec_context
        pkts = [p for p in c.demux(st) if p.size]
        return {
            "codec": cc.name,
            "pix_fmt": cc.pix_fmt,
            "size": (cc.width, cc.height),
            "time_base": str(st.time_base),
            "average_rate": str(st.average_rate),
            "frames": len(pkts),
            "pts": sorted(int(p.pts) for p in pkts),
            "keyframes": [i for i, p in enumerate(sorted(pkts, key=lambda p: p.pts)) if p.is_keyframe],
            "stream_duration": st.duration,
            "start_time": st.start_time,
            "container_duration": c.duration,
        }


def compare_video(rep: Report, ours: Path, theirs: Path, label: str) -> None:
    a, b = _video_layout(ours), _video_layout(theirs)
    for key, value in b.items():
        if key == "codec" and a["codec"] not in ("libdav1d", "av1"):
            continue
        shown_a = a[key] if key != "pts" else [*a[key][:6], "..."]
        shown_b = value if key != "pts" else [*value[:6], "..."]
        rep.check(a[key] == value, f"{label}: {key} ours {shown_a}, LeRobot {shown_b}")


def run(root: Path, ref_path: Path, out: Path) -> int:
    require_offline()
    install_torchvision_shim()
    import lerobot

    rep = Report(f"lerobot {lerobot.__version__} writer parity {root.name}")
    ref = Reference(ref_path)
    if "srccol/observation.state" not in ref.arrays:
        raise CheckFailed(f"{ref_path} has no source joint vectors (rewrite it with dump_reference.py)")
    write_with_lerobot(ref, out)

    ours_files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    theirs_files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    for name in sorted(ours_files & KNOWN_EXTRA_FILES):
        rep.info(f"note: {name} is in the project's dataset root (writer lock; LeRobot ignores it)")
    rep.check(
        ours_files - KNOWN_EXTRA_FILES == theirs_files,
        f"file sets differ: only ours {sorted(ours_files - theirs_files - KNOWN_EXTRA_FILES)}, "
        f"only LeRobot's {sorted(theirs_files - ours_files)}",
    )
    compare_info(
        rep,
        ref,
        json.loads((root / "meta/info.json").read_text()),
        json.loads((out / "meta/info.json").read_text()),
    )
    for name in ("tasks.jsonl", "episodes.jsonl"):
        a, b = _jsonl(root / "meta" / name), _jsonl(out / "meta" / name)
        rep.check(a == b, f"meta/{name}: ours {a[:3]}..., LeRobot {b[:3]}...")
        ta, tb = (root / "meta" / name).read_text(), (out / "meta" / name).read_text()
        if a == b and ta != tb:
            rep.info(f"note: meta/{name} same objects, different text (JSON formatting/escaping)")
    compare_stats(
        rep, ref, _jsonl(root / "meta/episodes_stats.jsonl"), _jsonl(out / "meta/episodes_stats.jsonl")
    )
    for rel in sorted(theirs_files & ours_files):
        if rel.endswith(".parquet"):
            compare_parquet(rep, ref, root / rel, out / rel)
        elif rel.endswith(".mp4"):
            compare_video(rep, root / rel, out / rel, rel)
    return rep.finish()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    main_guard(lambda: run(Path(sys.argv[1]).resolve(), Path(sys.argv[2]), Path(sys.argv[3]).resolve()))

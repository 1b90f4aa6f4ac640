"""Every kind of damage makes the validator fail, naming the file and the reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from fixtures.datasets import FPS
from recording.dataset.synth import synthetic_image
from recording.dataset.validator import validate_dataset

PQ0 = "data/chunk-000/episode_000000.parquet"
PQ1 = "data/chunk-000/episode_000001.parquet"
MP4_BASE0 = "videos/chunk-000/observation.images.base/episode_000000.mp4"
MP4_WRIST1 = "videos/chunk-000/observation.images.wrist/episode_000001.mp4"


def _edit_json(path: Path, fn: Callable[[dict], None]) -> None:
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj, indent=4))


def _edit_jsonl(path: Path, fn: Callable[[list[dict]], list[dict] | None]) -> None:
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    out = fn(recs)
    recs = recs if out is None else out
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def _edit_parquet(path: Path, fn: Callable[[pa.Table], pa.Table]) -> None:
    t = pq.read_table(path)
    pq.write_table(fn(t), path)


def _set_col(t: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), name, values)


def _reencode(path: Path, frames: int, pts_offset: int = 0, codec: str = "libx264") -> None:
    with av.open(str(path), "w") as c:
        st = c.add_stream(codec, rate=FPS, options={"g": "2"})
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        st.codec_context.time_base = Fraction(1, FPS)
        for k in range(frames):
            vf = av.VideoFrame.from_ndarray(synthetic_image(0, 0, k, 48, 64), format="rgb24")
            vf.pts = k + pts_offset
            vf.time_base = Fraction(1, FPS)
            for p in st.encode(vf):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)


def _jitter_timestamps(t: pa.Table) -> pa.Table:
    ts = np.arange(t.num_rows, dtype=np.float64) / FPS
    ts[5:] += 0.004  # wall-clock style jitter
    return _set_col(t, "timestamp", pa.array(ts.astype(np.float32)))


def _bad_action(t: pa.Table) -> pa.Table:
    vals = np.stack(t.column("action").to_pylist()).astype(np.float32)
    vals[3, 2] = np.nan
    return _set_col(t, "action", pa.FixedSizeListArray.from_arrays(pa.array(vals.reshape(-1)), 7))


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _corrupt_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid - 40 : mid + 40] = b"\xff" * 80
    path.write_bytes(bytes(data))


def _stats(ep: int, feature: str, key: str, value: object) -> Callable[[list[dict]], None]:
    def fn(recs: list[dict]) -> None:
        recs[ep]["stats"][feature][key] = value

    return fn


CASES: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("missing parquet", lambda r: (r / PQ1).unlink(), PQ1, "missing (episode 1)"),
    (
        "missing mp4",
        lambda r: (r / MP4_BASE0).unlink(),
        MP4_BASE0,
        "missing (episode 0, observation.images.base)",
    ),
    ("missing info", lambda r: (r / "meta/info.json").unlink(), "meta/info.json", "missing"),
    (
        "missing episodes_stats",
        lambda r: (r / "meta/episodes_stats.jsonl").unlink(),
        "meta/episodes_stats.jsonl",
        "missing",
    ),
    (
        "wrong row count",
        lambda r: _edit_parquet(r / PQ0, lambda t: t.slice(0, 11)),
        PQ0,
        "11 rows, episodes.jsonl says length 12",
    ),
    ("bad timestamps", lambda r: _edit_parquet(r / PQ1, _jitter_timestamps), PQ1, "timestamp at row 5"),
    (
        "non-contiguous index",
        lambda r: _edit_parquet(r / PQ1, lambda t: _set_col(t, "index", pc.add(t.column("index"), 1))),
        PQ1,
        "index is not contiguous",
    ),
    (
        "frame_index not 0..L-1",
        lambda r: _edit_parquet(r / PQ0, lambda t: _set_col(t, "frame_index", pa.array(np.arange(1, 13)))),
        PQ0,
        "frame_index is not 0..length-1",
    ),
    (
        "wrong fps",
        lambda r: _edit_json(r / "meta/info.json", lambda i: i.update(fps=15)),
        "meta/info.json",
        "video.fps 30 differs from fps 15",
    ),
    (
        "wrong fps: timestamps",
        lambda r: _edit_json(r / "meta/info.json", lambda i: i.update(fps=15)),
        PQ0,
        "timestamp at row 1",
    ),
    (
        "video one frame short",
        lambda r: _reencode(r / MP4_WRIST1, 11),
        MP4_WRIST1,
        "11 frames decoded, episode length is 12",
    ),
    (
        "video one frame long",
        lambda r: _reencode(r / MP4_WRIST1, 13),
        MP4_WRIST1,
        "13 frames decoded, episode length is 12",
    ),
    (
        "video not starting at 0",
        lambda r: _reencode(r / MP4_BASE0, 12, pts_offset=3),
        MP4_BASE0,
        "frame 0 has pts 0.100000 s, expected 0.000000 s",
    ),
    (
        "video codec differs from info",
        lambda r: _reencode(r / MP4_BASE0, 12, codec="libx265"),
        MP4_BASE0,
        "codec hevc, info.json says h264",
    ),
    ("truncated mp4", lambda r: _truncate(r / MP4_BASE0, 0.5), MP4_BASE0, "cannot"),
    ("corrupted parquet", lambda r: _corrupt_middle(r / PQ1), PQ1, "cannot read parquet"),
    ("truncated parquet", lambda r: _truncate(r / PQ0, 0.6), PQ0, "cannot read parquet"),
    (
        "bad state stats",
        lambda r: _edit_jsonl(
            r / "meta/episodes_stats.jsonl", _stats(1, "observation.state", "mean", [0.0] * 7)
        ),
        "meta/episodes_stats.jsonl",
        "episode 1 stats of 'observation.state': 'mean' differs",
    ),
    (
        "bad image stats shape",
        lambda r: _edit_jsonl(
            r / "meta/episodes_stats.jsonl", _stats(0, "observation.images.base", "std", [0.1, 0.1, 0.1])
        ),
        "meta/episodes_stats.jsonl",
        "'std' has shape (3,), expected (3, 1, 1)",
    ),
    (
        "image stats not 0..1",
        lambda r: _edit_jsonl(
            r / "meta/episodes_stats.jsonl", _stats(0, "observation.images.wrist", "max", [[[200.0]]] * 3)
        ),
        "meta/episodes_stats.jsonl",
        "expected 0 <= min <= mean <= max <= 1",
    ),
    (
        "image stats wrong mean",
        lambda r: _edit_jsonl(
            r / "meta/episodes_stats.jsonl", _stats(1, "observation.images.wrist", "mean", [[[0.9]]] * 3)
        ),
        "meta/episodes_stats.jsonl",
        "'mean' differs from recomputed value",
    ),
    (
        "stats count wrong",
        lambda r: _edit_jsonl(r / "meta/episodes_stats.jsonl", _stats(0, "action", "count", [11])),
        "meta/episodes_stats.jsonl",
        "count [11], expected [12]",
    ),
    (
        "stats missing a feature",
        lambda r: _edit_jsonl(
            r / "meta/episodes_stats.jsonl", lambda recs: recs[0]["stats"].pop("timestamp") and None
        ),
        "meta/episodes_stats.jsonl",
        "episode 0 stats of 'timestamp': missing",
    ),
    (
        "total_frames wrong",
        lambda r: _edit_json(r / "meta/info.json", lambda i: i.update(total_frames=25)),
        "meta/info.json",
        "total_frames is 25, expected 24",
    ),
    (
        "total_episodes wrong",
        lambda r: _edit_json(r / "meta/info.json", lambda i: i.update(total_episodes=3)),
        "meta/info.json",
        "total_episodes is 3, expected 2",
    ),
    (
        "total_videos wrong",
        lambda r: _edit_json(r / "meta/info.json", lambda i: i.update(total_videos=2)),
        "meta/info.json",
        "total_videos is 2, expected 4",
    ),
    (
        "splits wrong",
        lambda r: _edit_json(r / "meta/info.json", lambda i: i.update(splits={"train": "0:1"})),
        "meta/info.json",
        "splits is",
    ),
    (
        "total_tasks wrong",
        lambda r: _edit_json(r / "meta/info.json", lambda i: i.update(total_tasks=1)),
        "meta/info.json",
        "total_tasks is 1, tasks.jsonl has 2",
    ),
    (
        "codebase_version",
        lambda r: _edit_json(r / "meta/info.json", lambda i: i.update(codebase_version="v2.0")),
        "meta/info.json",
        "codebase_version is 'v2.0'",
    ),
    (
        "info field missing",
        lambda r: _edit_json(r / "meta/info.json", lambda i: i.pop("total_chunks")),
        "meta/info.json",
        "field 'total_chunks' missing",
    ),
    (
        "video info block incomplete",
        lambda r: _edit_json(
            r / "meta/info.json",
            lambda i: i["features"]["observation.images.base"]["info"].pop("video.pix_fmt"),
        ),
        "meta/info.json",
        "info block lacks ['video.pix_fmt']",
    ),
    (
        "default feature wrong dtype",
        lambda r: _edit_json(
            r / "meta/info.json", lambda i: i["features"]["timestamp"].update(dtype="float64")
        ),
        "meta/info.json",
        "feature 'timestamp' must be dtype float32",
    ),
    (
        "slash in feature name",
        lambda r: _edit_json(
            r / "meta/info.json",
            lambda i: i["features"].update(
                {"observation/x": {"dtype": "float32", "shape": [1], "names": None}}
            ),
        ),
        "meta/info.json",
        "'/' is not allowed",
    ),
    (
        "names do not match shape",
        lambda r: _edit_json(
            r / "meta/info.json", lambda i: i["features"]["action"].update(names=["a", "b"])
        ),
        "meta/info.json",
        "2 names for shape [7]",
    ),
    (
        "episode index gap",
        lambda r: _edit_jsonl(r / "meta/episodes.jsonl", lambda recs: recs[1].update(episode_index=2)),
        "meta/episodes.jsonl",
        "numbered 0..N-1",
    ),
    (
        "episode task unknown",
        lambda r: _edit_jsonl(r / "meta/episodes.jsonl", lambda recs: recs[0].update(tasks=["fly"])),
        "meta/episodes.jsonl",
        "task(s) ['fly'] not in tasks.jsonl",
    ),
    (
        "task_index unknown",
        lambda r: _edit_parquet(r / PQ0, lambda t: _set_col(t, "task_index", pa.array(np.full(12, 7)))),
        PQ0,
        "task_index value(s) [7] not in tasks.jsonl",
    ),
    (
        "NaN in action",
        lambda r: _edit_parquet(r / PQ1, _bad_action),
        PQ1,
        "column 'action' has NaN/inf values",
    ),
    (
        "missing column",
        lambda r: _edit_parquet(r / PQ0, lambda t: t.drop_columns(["task_index"])),
        PQ0,
        "missing column(s) ['task_index']",
    ),
    (
        "undeclared column",
        lambda r: _edit_parquet(r / PQ0, lambda t: t.append_column("extra", pa.array(np.zeros(12)))),
        PQ0,
        "column(s) ['extra'] not declared",
    ),
    (
        "stray parquet",
        lambda r: (r / "data/chunk-000/episode_000005.parquet").write_bytes((r / PQ0).read_bytes()),
        "data/chunk-000/episode_000005.parquet",
        "stray file",
    ),
    (
        "partial JSONL line",
        lambda r: (r / "meta/episodes.jsonl").open("a").write('{"episode_index": 2, "ta'),
        "meta/episodes.jsonl",
        "line 3 is not valid JSON",
    ),
]


@pytest.mark.parametrize(("mutate", "path", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validator_catches(
    dataset_copy: Path, mutate: Callable[[Path], None], path: str, reason: str
) -> None:
    assert validate_dataset(dataset_copy).ok  # the copy is valid before the damage
    mutate(dataset_copy)
    report = validate_dataset(dataset_copy)
    if "vs decoded video" not in " ".join(w.reason for w in report.warnings):
        assert not report.ok
    else:  # image stats vs the decoded video: a warning, an error only when strict (item 7)
        assert any(w.path == path and reason in w.reason for w in report.warnings)
        report = validate_dataset(dataset_copy, strict=True)
    msgs = [str(p) for p in report.problems]
    assert any(p.path == path and reason in p.reason for p in report.problems), msgs


def test_missing_root(tmp_path: Path) -> None:
    report = validate_dataset(tmp_path / "nope")
    assert not report.ok and "not a directory" in report.problems[0].reason


def test_no_decode_still_checks_containers(dataset_copy: Path) -> None:
    """Without decoding, a short video is still caught by its stream duration (what the v3 converter uses)."""
    _reencode(dataset_copy / MP4_WRIST1, 11)
    report = validate_dataset(dataset_copy, decode_videos=False)
    assert report.videos_decoded == 0
    assert [str(p) for p in report.problems] == [
        f"{MP4_WRIST1}: stream duration 0.3667 s, expected length/fps = 0.4000 s"
    ]

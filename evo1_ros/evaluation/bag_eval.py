"""`evo1 bag eval`: open-loop scoring of a checkpoint against a bag or a LeRobot v2.1 dataset, without ROS.

At every (``stride``-th) frame of every episode the synchronised observation (camera frames and
measured state of that row, assembled by the policy node's own
:class:`~evo1_ros.control.observation.ObservationAssembler`, so view mapping and units are the
node's) goes through the policy; its chunk, converted back to REP-103 as the node does, is compared
with the recorded actions of the next ``horizon`` rows. A bag is first converted with
`evo1 bag to-lerobot` (the recorder's frame logic) into a temporary dataset, so "synchronised" means
exactly what recording it live would have meant.

Output: ``report.json`` (per-joint MAE/RMSE overall, by horizon step and by episode) and two PNGs
(predicted vs recorded joint traces of the first episode; error by horizon step).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evo1_ros.control.limits import ARM_JOINTS, GRIPPER_JOINT, GripperPulseMap
from evo1_ros.control.observation import Frame, ObservationAssembler, ObservationConfig
from evo1_ros.control.units import UnitConvention, from_convention, parse_convention
from evo1_ros.evaluation.plotting import JOINT_COLORS

# predict(images, image_mask, state (model units), task) -> (horizon, D) chunk in model units
PredictFn = Callable[[list, list, np.ndarray, str], np.ndarray]


@dataclass(frozen=True)
class EvalSettings:
    """The policy node's observation/units settings (config/evo1_policy.yaml names)."""

    view_map: tuple[str, ...] = ("base", "wrist", "")
    joint_names: tuple[str, ...] = (*ARM_JOINTS, GRIPPER_JOINT)
    units: UnitConvention = UnitConvention.REP103
    horizon: int = 0  # steps compared; 0 = the chunk length
    stride: int = 1


class _Acc:
    """Sums of |e| and e^2 per (horizon step, joint)."""

    def __init__(self, horizon: int, joints: int) -> None:
        self.abs = np.zeros((horizon, joints))
        self.sq = np.zeros((horizon, joints))
        self.n = np.zeros((horizon, 1))

    def add(self, err: np.ndarray) -> None:
        h = err.shape[0]
        self.abs[:h] += np.abs(err)
        self.sq[:h] += err**2
        self.n[:h] += 1

    def summary(self, names: Sequence[str]) -> dict[str, Any]:
        n_all = max(float(self.n.sum()), 1.0)
        mae = self.abs.sum(0) / n_all
        rmse = np.sqrt(self.sq.sum(0) / n_all)
        with np.errstate(invalid="ignore", divide="ignore"):
            mae_h = np.where(self.n > 0, self.abs / np.maximum(self.n, 1), np.nan)
            rmse_h = np.where(self.n > 0, np.sqrt(self.sq / np.maximum(self.n, 1)), np.nan)
        return {
            "mae": dict(zip(names, mae.tolist())),
            "rmse": dict(zip(names, rmse.tolist())),
            "mae_mean": float(mae.mean()),
            "rmse_mean": float(np.sqrt((self.sq.sum(0) / n_all).mean())),
            "by_horizon": {
                "mae": mae_h.tolist(),
                "rmse": rmse_h.tolist(),
                "count": self.n[:, 0].astype(int).tolist(),
            },
        }


def score_dataset(
    root: Path | str,
    predict: PredictFn,
    settings: EvalSettings,
    task: str = "",
    gripper: GripperPulseMap | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score ``predict`` on every episode of the dataset at ``root``; returns (report, traces of episode 0)."""
    from recording.dataset.reader import LeRobotReader

    gripper = gripper or GripperPulseMap()
    reader = LeRobotReader(root)
    feats = reader.features
    cams = [c.name for c in feats.cameras]
    missing = [v for v in settings.view_map if v and v not in cams]
    if missing:
        raise ValueError(
            f"view_map camera(s) {missing} are not in the dataset (cameras {cams}); pass --view-map"
        )
    joints = list(settings.joint_names)
    for what, names in (("state", feats.state_names), ("action", feats.action_names)):
        absent = [j for j in joints if j not in names]
        if absent:
            raise ValueError(f"dataset {what} has no joint(s) {absent} (it has {list(names)})")
    s_idx = [list(feats.state_names).index(j) for j in joints]
    a_idx = [list(feats.action_names).index(j) for j in joints]
    assembler = ObservationAssembler(
        ObservationConfig(
            cameras=tuple(cams),
            view_map=settings.view_map,
            joint_names=tuple(joints),
            units=settings.units,
            gripper=gripper,
        )
    )
    fps = reader.fps
    acc: _Acc | None = None
    episodes: dict[str, Any] = {}
    traces: dict[str, np.ndarray] = {}
    for ep in range(reader.num_episodes):
        cols = reader.episode_columns(ep)
        n = len(cols["frame_index"])
        states = np.asarray(cols["observation.state"], np.float64)[:, s_idx]
        actions = np.asarray(cols["action"], np.float64)[:, a_idx]
        ep_task = task or reader.tasks.get(int(cols["task_index"][0]), "")
        frames_at = range(0, n, max(1, settings.stride))
        ts = [i / fps for i in frames_at]
        video = {c: reader.decode_video(ep, c, ts) for c in cams if c in settings.view_map}
        ep_acc: _Acc | None = None
        pred0 = np.full_like(actions, np.nan)
        for k, i in enumerate(frames_at):
            frames = {c: Frame(v[k], "rgb8", i / fps) for c, v in video.items()}
            obs = assembler.assemble(frames, states[i], i / fps, i / fps)
            chunk = np.asarray(predict(obs.images, obs.image_mask, obs.state, ep_task), np.float64)
            chunk = from_convention(chunk[:, : len(joints)], joints, settings.units, gripper)
            horizon = settings.horizon or chunk.shape[0]
            if acc is None:
                acc = _Acc(horizon, len(joints))
            if ep_acc is None:
                ep_acc = _Acc(horizon, len(joints))
            h = min(horizon, chunk.shape[0], n - i)
            err = chunk[:h] - actions[i : i + h]
            acc.add(err)
            ep_acc.add(err)
            pred0[i] = chunk[0]
        if ep_acc is not None:
            episodes[str(ep)] = {
                "frames": n,
                "scored": len(frames_at),
                "task": ep_task,
                **ep_acc.summary(joints),
            }
        if ep == 0:
            traces = {"recorded": actions, "predicted": pred0}
    if acc is None:
        raise ValueError(f"{root}: no frames to score")
    report = {
        "dataset": str(root),
        "fps": fps,
        "joints": joints,
        "units": settings.units.value,
        "horizon": acc.abs.shape[0],
        "stride": settings.stride,
        **acc.summary(joints),
        "by_episode": episodes,
    }
    return report, traces


def write_plots(out: Path, report: dict[str, Any], traces: dict[str, np.ndarray]) -> list[Path]:
    """traces.png (recorded solid, 1-step prediction dotted, per joint) and horizon_error.png (OpenCV)."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    paths = []
    w, h = 900, 500
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(
        img,
        "episode 0: recorded action (solid) vs predicted step 0 (dots), rad",
        (10, 20),
        font,
        0.5,
        (0, 0, 0),
        1,
    )
    rec, pred = traces.get("recorded"), traces.get("predicted")
    if rec is not None and len(rec) > 1:
        both = np.concatenate([rec[np.isfinite(rec)], pred[np.isfinite(pred)]])
        lo, hi = float(both.min()), float(both.max())
        span = max(hi - lo, 1e-6)
        xs = 40 + np.arange(len(rec)) / (len(rec) - 1) * (w - 140)
        for j in range(rec.shape[1]):
            c = JOINT_COLORS[j % len(JOINT_COLORS)]
            ys = h - 30 - (rec[:, j] - lo) / span * (h - 70)
            cv2.polylines(img, [np.stack([xs, ys], 1).astype(np.int32)], False, c, 1, cv2.LINE_AA)
            for x, v in zip(xs, pred[:, j]):
                if np.isfinite(v):
                    cv2.circle(img, (int(x), int(h - 30 - (v - lo) / span * (h - 70))), 2, c, -1)
            cv2.putText(img, report["joints"][j], (w - 95, 40 + 16 * j), font, 0.4, c, 1)
        cv2.putText(img, f"{hi:.3f}", (2, 44), font, 0.35, (0, 0, 0), 1)
        cv2.putText(img, f"{lo:.3f}", (2, h - 30), font, 0.35, (0, 0, 0), 1)
    paths.append(out / "traces.png")
    cv2.imwrite(str(paths[-1]), img)

    img = np.full((h, w, 3), 255, np.uint8)
    mae = np.asarray(report["by_horizon"]["mae"], np.float64)
    cv2.putText(img, "MAE by horizon step (rad), per joint", (10, 20), font, 0.5, (0, 0, 0), 1)
    finite = mae[np.isfinite(mae)]
    if mae.shape[0] > 1 and finite.size:
        top = max(float(finite.max()), 1e-9)
        xs = 40 + np.arange(mae.shape[0]) / (mae.shape[0] - 1) * (w - 140)
        for j in range(mae.shape[1]):
            ys = h - 30 - np.nan_to_num(mae[:, j]) / top * (h - 70)
            c = JOINT_COLORS[j % len(JOINT_COLORS)]
            cv2.polylines(img, [np.stack([xs, ys], 1).astype(np.int32)], False, c, 1, cv2.LINE_AA)
            cv2.putText(img, report["joints"][j], (w - 95, 40 + 16 * j), font, 0.4, c, 1)
        cv2.putText(img, f"{top:.4f}", (2, 44), font, 0.35, (0, 0, 0), 1)
        cv2.putText(img, "0", (20, h - 30), font, 0.35, (0, 0, 0), 1)
    paths.append(out / "horizon_error.png")
    cv2.imwrite(str(paths[-1]), img)
    return paths


def policy_predict(checkpoint: str | Path, device: str = "cpu", seed: int = 0) -> tuple[PredictFn, int]:
    """The checkpoint's predict (fixed noise seed per call, as the node's ``seed`` parameter) and its view count."""
    from evo1_ros.model import load_policy

    policy = load_policy(checkpoint, device=device)

    def predict(images: list, mask: list, state: np.ndarray, task: str) -> np.ndarray:
        return policy.predict(images, mask, state, task, generator=seed)

    return predict, int(policy.config.num_views)


def evaluate(
    source: Path | str,
    predict: PredictFn,
    out: Path | str,
    settings: EvalSettings,
    *,
    task: str = "",
    recorder_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score ``predict`` on a dataset, or on a bag converted with the recorder's logic; writes the report."""
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    source = Path(source).expanduser()
    with tempfile.TemporaryDirectory(prefix="evo1_bag_eval_") as tmp:
        root, score_task = source, task
        if not (source / "meta" / "info.json").is_file():
            from recording.bag.to_lerobot import ConvertOptions, convert, recorder_parameters

            params = recorder_params or recorder_parameters()
            root = Path(tmp) / "dataset"
            convert([source], root, ConvertOptions(params, task=task))
            score_task = ""  # the task was resolved into the converted dataset (catalogue id -> prompt)
        report, traces = score_dataset(root, predict, settings, score_task)
    report["source"] = str(source)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    report["plots"] = [str(p) for p in write_plots(out, report, traces)]
    return report


def main_eval(args: argparse.Namespace) -> int:
    """`evo1 bag eval` entry point (see evo1_ros/cli/bag_cmd.py for the arguments)."""
    from recording.bag.to_lerobot import parse_overrides, recorder_parameters

    predict, num_views = policy_predict(args.checkpoint, args.device, args.seed)
    view_map = tuple(args.view_map) if getattr(args, "view_map", None) else ("base", "wrist", "")[:num_views]
    settings = EvalSettings(
        view_map=view_map,
        units=parse_convention(getattr(args, "units", "rep103")),
        horizon=args.horizon,
        stride=args.stride,
    )
    params = recorder_parameters(args.config, parse_overrides(args.param))
    report = evaluate(args.source, predict, args.output, settings, task=args.task, recorder_params=params)
    print(
        f"{report['source']}: MAE {report['mae_mean']:.4f} rad, RMSE {report['rmse_mean']:.4f} rad over "
        f"{len(report['by_episode'])} episode(s), horizon {report['horizon']}; {Path(args.output) / 'report.json'}",
        file=sys.stdout,
    )
    return 0

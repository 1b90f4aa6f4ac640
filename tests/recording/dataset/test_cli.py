"""`evo1 dataset ...`: help with examples, exit codes, one-line errors, real outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from evo1_ros.cli.main import main

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("sub", ["validate", "info", "synth", "preview"])
def test_help_has_example(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["dataset", sub, "--help"])
    assert exc.value.code == 0
    assert "Example: evo1 dataset " + sub in capsys.readouterr().out


def test_synth_validate_info_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ds"
    assert (
        main(
            [
                "dataset",
                "synth",
                str(root),
                "--episodes",
                "2",
                "--frames",
                "8",
                "--cameras",
                "base:64x48",
                "--codec",
                "libx264",
                "--task",
                "pour_foam",
            ]
        )
        == 0
    )
    assert "wrote 2 episode(s) x 8 frame(s)" in capsys.readouterr().out
    assert main(["dataset", "validate", str(root)]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {root}: 2 episode(s), 16 frame(s), 2 video(s) decoded")
    assert main(["dataset", "info", str(root), "--episodes"]) == 0
    out = capsys.readouterr().out
    assert "pour the foam from the cup into the bowl" in out and "h264 yuv420p @ 30 fps" in out
    assert main(["dataset", "info", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["info"]["total_frames"] == 16
    png = tmp_path / "sheet.png"
    assert main(["dataset", "preview", str(root), "--episode", "1", "-o", str(png), "--frames", "4"]) == 0
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] >= 640 and img.shape[0] > 400
    # synth --append extends the same dataset through the writer's reopen path
    assert (
        main(
            [
                "dataset",
                "synth",
                str(root),
                "--append",
                "--episodes",
                "1",
                "--frames",
                "3",
                "--cameras",
                "base:64x48",
                "--codec",
                "libx264",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["dataset", "validate", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 3
    # --append follows the dataset (camera, codec), not the default config (2 cameras, AV1).
    assert main(["dataset", "synth", str(root), "--episodes", "1", "--frames", "5", "--append"]) == 0
    assert "wrote 1 episode(s) x 5 frame(s)" in capsys.readouterr().out
    assert main(["dataset", "validate", str(root)]) == 0
    assert "4 episode(s), 24 frame(s)" in capsys.readouterr().out


def test_validate_failure_lists_problems(
    golden: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(golden, root)
    (root / "videos/chunk-000/observation.images.base/episode_000001.mp4").unlink()
    assert main(["dataset", "validate", str(root)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert (
        "videos/chunk-000/observation.images.base/episode_000001.mp4: missing (episode 1, "
        "observation.images.base)" in out
    )
    assert out[-1] == f"FAILED: {root}: 1 problem(s)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "/nonexistent/ds"], "evo1 dataset info: error: /nonexistent/ds: not a directory"),
        (
            ["synth", "{tmp}/x", "--episodes", "0"],
            "evo1 dataset synth: error: --episodes and --frames must be >= 1",
        ),
        (["synth", "{tmp}/x", "--cameras", "base:64"], "is not NAME:WIDTHxHEIGHT"),
        (["synth", "{tmp}/x", "--cameras", "base:63x48"], "must be even integers"),
        (["synth", "{tmp}/x", "--codec", "mjpeg"], "video codec 'mjpeg' not supported"),
        (["synth", "{tmp}/x", "--features", "/nonexistent.yaml"], "/nonexistent.yaml: missing"),
        (["preview", "{golden}", "--episode", "7", "-o", "{tmp}/p.png"], "episode 7 out of range 0..1"),
        (["preview", "{golden}", "--episode", "0", "-o", "{tmp}/p.jpg"], "output must be a .png file"),
    ],
)
def test_bad_input_one_line_error(
    argv: list[str], message: str, tmp_path: Path, golden: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(tmp=tmp_path, golden=golden) for a in argv]
    assert main(["dataset", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_dataset_cli_imports_neither_torch_nor_rclpy(golden: Path) -> None:
    code = (
        "import sys; from evo1_ros.cli.main import main; rc = main(['dataset', 'validate', sys.argv[1]]); "
        "import recording.dataset.cli, recording.dataset.reader, recording.dataset.preview, recording.dataset.synth, recording.recorder.frame_clock; "
        "bad = [m for m in ('torch', 'rclpy') if m in sys.modules]; print('LOADED', bad); sys.exit(rc or len(bad))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-c", code, str(golden)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert res.returncode == 0 and "LOADED []" in res.stdout, res.stdout + res.stderr

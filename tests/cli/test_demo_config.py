"""`evo1 demo`'s shipped settings (config/demo.yaml) turn into an `evo1 train` configuration that
validates, with exactly the values the file gives (no compute: the demo itself is `make demo`)."""

from __future__ import annotations

from evo1_ros.cli.demo_cmd import load_demo_config, train_overrides
from evo1_ros.train.config import load_config


def test_demo_train_settings_reach_evo1_train_unchanged():
    cfg = load_demo_config()
    args = train_overrides(cfg["train"])
    assert len(args) == len(cfg["train"])
    train = load_config(None, ["datasets=[/nonexistent/demo_dataset]", *args])
    assert train.steps == cfg["train"]["steps"]
    assert train.batch_size == cfg["train"]["batch_size"]
    assert train.lr == cfg["train"]["lr"]
    assert train.model["preset"] == "tiny"
    assert train.model["image_size"] == cfg["image_size"] == cfg["train"]["model.image_size"]

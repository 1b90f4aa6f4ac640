"""Video encoder choice and options (docs/lerobot_v21.md §5).

LeRobot encodes AV1 (``libsvtav1``), yuv420p, g=2, crf=30. When the PyAV build has no SVT-AV1 we
fall back to H.264 (``libx264``), which LeRobot 0.3.3 also loads. The codec is a config option
because on a small recording PC AV1 may not keep up with several cameras in real time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import av

# Encoders the writer accepts, with the canonical FFmpeg codec name written into info.json.
ENCODERS: dict[str, str] = {"libsvtav1": "av1", "libx264": "h264", "libx265": "hevc"}
# The reverse map, used when reopening a dataset: info.json stores the canonical name.
ENCODER_FOR_CODEC: dict[str, str] = {v: k for k, v in ENCODERS.items()}
DEFAULT_CRF: dict[str, int] = {"libsvtav1": 30, "libx264": 23, "libx265": 28}
# Preset when none is configured. SVT-AV1 keeps its own default (8, as LeRobot); x264's "medium"
# cannot encode several cameras in real time on a small PC, "veryfast" can (bench/recorder_throughput.py).
DEFAULT_PRESET: dict[str, str] = {"libx264": "veryfast", "libx265": "veryfast"}


def encoder_available(name: str) -> bool:
    """Whether this PyAV build can encode with ``name``."""
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


@dataclass(frozen=True)
class VideoSettings:
    """How camera streams are encoded. ``codec='auto'``: libsvtav1 if available, else libx264."""

    codec: str = "auto"
    pix_fmt: str = "yuv420p"
    gop: int = 2
    crf: int | None = None
    preset: str | int | None = None

    def encoder(self) -> str:
        """The concrete PyAV encoder name (raises ValueError if unknown or missing in this build)."""
        name = self.codec
        if name == "auto":
            name = "libsvtav1" if encoder_available("libsvtav1") else "libx264"
        name = ENCODER_FOR_CODEC.get(name, name)  # accept "av1"/"h264"/"hevc" too
        if name not in ENCODERS:
            raise ValueError(f"video codec {self.codec!r} not supported (use auto, {', '.join(ENCODERS)})")
        if not encoder_available(name):
            raise ValueError(f"video codec {name!r} is not available in this PyAV build")
        return name

    def canonical_codec(self) -> str:
        """FFmpeg canonical codec name, as info.json stores it (av1, h264, hevc)."""
        return ENCODERS[self.encoder()]

    def options(self) -> dict[str, str]:
        """Encoder options (all strings, as PyAV wants them)."""
        enc = self.encoder()
        crf = self.crf if self.crf is not None else DEFAULT_CRF[enc]
        opts = {"g": str(self.gop), "crf": str(crf)}
        preset = self.preset if self.preset is not None else DEFAULT_PRESET.get(enc)
        if preset is not None:
            opts["preset"] = str(preset)
        if enc == "libsvtav1":
            # SVT-AV1 prints a banner per encoder; level 1 keeps errors only.
            os.environ.setdefault("SVT_LOG", "1")
        return opts

    def info_block(self, fps: int) -> dict[str, Any]:
        """Codec part of a video feature's ``info`` (height/width are added per camera)."""
        return {
            "video.codec": self.canonical_codec(),
            "video.pix_fmt": self.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": int(fps),
            "video.channels": 3,
            "has_audio": False,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> VideoSettings:
        """Build from the ``video:`` mapping of the features config (missing keys keep defaults)."""
        cfg = dict(cfg or {})
        unknown = set(cfg) - {"codec", "pix_fmt", "gop", "crf", "preset"}
        if unknown:
            raise ValueError(f"video settings: unknown keys {sorted(unknown)}")
        s = cls(
            codec=str(cfg.get("codec", "auto")),
            pix_fmt=str(cfg.get("pix_fmt", "yuv420p")),
            gop=int(cfg.get("gop", 2)),
            crf=None if cfg.get("crf") is None else int(cfg["crf"]),
            preset=cfg.get("preset"),
        )
        if s.pix_fmt != "yuv420p":
            raise ValueError(f"video settings: pix_fmt {s.pix_fmt!r} unsupported (LeRobot uses yuv420p)")
        if s.gop < 1:
            raise ValueError("video settings: gop must be >= 1")
        return s

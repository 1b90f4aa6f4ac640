"""The official image augmentation set, in plain torch (no torchvision in this environment).

Per view with p = 0.5 (docs/evo1_model.md §8): RandomResizedCrop(size, scale (0.95, 1.0), bicubic) →
RandomRotation(±5°, bicubic) → ColorJitter(brightness 0.3, contrast 0.4, saturation 0.5, hue 0.08, in a
random order as torchvision applies them); otherwise a plain bicubic resize. Every draw comes from an
explicit generator so a sample's augmentation is a function of its seed (resume, DDP and DataLoader
workers all see the same pictures). Output: uint8 levels, like the inference path's `to_uint8_tile`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from evo1_ros.model.processing.images import to_uint8_tile


@dataclass(frozen=True)
class AugmentSettings:
    """The official values; kept as fields so a config could change them."""

    p: float = 0.5
    crop_scale: tuple[float, float] = (0.95, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    degrees: float = 5.0
    brightness: float = 0.3
    contrast: float = 0.4
    saturation: float = 0.5
    hue: float = 0.08


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _crop_box(h: int, w: int, s: AugmentSettings, gen: torch.Generator) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params: (top, left, height, width)."""
    area = h * w
    log_ratio = (math.log(s.crop_ratio[0]), math.log(s.crop_ratio[1]))
    for _ in range(10):
        target = area * _uniform(gen, *s.crop_scale)
        ratio = math.exp(_uniform(gen, *log_ratio))
        cw = int(round(math.sqrt(target * ratio)))
        ch = int(round(math.sqrt(target / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (), generator=gen))
            return top, left, ch, cw
    ratio_in = w / h  # fallback: central crop
    if ratio_in < s.crop_ratio[0]:
        cw, ch = w, int(round(w / s.crop_ratio[0]))
    elif ratio_in > s.crop_ratio[1]:
        ch, cw = h, int(round(h * s.crop_ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """[3, H, W] float 0..255 → [3, size, size], bicubic + antialias."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(
        x.unsqueeze(0), size=(size, size), mode="bicubic", antialias=True, align_corners=False
    ).squeeze(0)


def _rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate [3, H, W] about its centre, bicubic, black fill (torchvision's RandomRotation defaults)."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    h, w = x.shape[-2:]
    theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]], dtype=x.dtype).unsqueeze(0)
    grid = F.affine_grid(theta, [1, 3, h, w], align_corners=False)
    return F.grid_sample(x.unsqueeze(0), grid, mode="bicubic", padding_mode="zeros", align_corners=False)[0]


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)


def _blend(a: torch.Tensor, b: torch.Tensor, ratio: float) -> torch.Tensor:
    return (ratio * a + (1 - ratio) * b).clamp(0, 1)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[0], x[1], x[2]
    maxc, _ = x.max(dim=0)
    minc, _ = x.min(dim=0)
    v = maxc
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    safe = delta.clamp_min(1e-12)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, v])


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x[0], x[1], x[2]
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = torch.zeros_like(x)
    for k, (r, g, b) in enumerate(table):
        sel = i == k
        out[0] = torch.where(sel, r, out[0])
        out[1] = torch.where(sel, g, out[1])
        out[2] = torch.where(sel, b, out[2])
    return out


def color_jitter(x: torch.Tensor, s: AugmentSettings, gen: torch.Generator) -> torch.Tensor:
    """ColorJitter on [3, H, W] in [0, 1]: the four adjustments in a random order."""
    b = _uniform(gen, max(0.0, 1 - s.brightness), 1 + s.brightness)
    c = _uniform(gen, max(0.0, 1 - s.contrast), 1 + s.contrast)
    sat = _uniform(gen, max(0.0, 1 - s.saturation), 1 + s.saturation)
    hue = _uniform(gen, -s.hue, s.hue)
    for op in torch.randperm(4, generator=gen).tolist():
        if op == 0:
            x = (x * b).clamp(0, 1)
        elif op == 1:
            x = _blend(x, _gray(x).mean().expand_as(x), c)
        elif op == 2:
            x = _blend(x, _gray(x).expand_as(x), sat)
        else:
            hsv = _rgb_to_hsv(x)
            hsv[0] = (hsv[0] + hue) % 1.0
            x = _hsv_to_rgb(hsv).clamp(0, 1)
    return x


def augment_view(
    image: torch.Tensor, size: int, gen: torch.Generator, settings: AugmentSettings | None = None
) -> torch.Tensor:
    """[3, H, W] uint8 → [3, size, size] float uint8 levels, augmented with probability `settings.p`."""
    s = settings or AugmentSettings()
    if float(torch.rand((), generator=gen)) >= s.p:
        return to_uint8_tile(image, size)
    x = image.float()
    top, left, ch, cw = _crop_box(x.shape[-2], x.shape[-1], s, gen)
    x = _resize(x[:, top : top + ch, left : left + cw], size)
    x = _rotate(x, _uniform(gen, -s.degrees, s.degrees))
    x = color_jitter((x / 255.0).clamp(0, 1), s, gen) * 255.0
    return x.round().clamp(0, 255)

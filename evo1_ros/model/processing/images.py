"""Camera images → InternViT pixel values: one 448² tile per view, ImageNet normalisation.

Evo-1 uses a single tile per view (no dynamic tiling); absent views are black images, which still run
through the ViT (docs/evo1_model.md §3, §4). Images of any size are resized with bicubic +
antialias and re-quantised to uint8 levels, like the original's PIL path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_image(image: object, name: str = "image") -> np.ndarray:
    """Validate one HxWx3 uint8 RGB array, with an error that says what to fix."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (H, W, 3) uint8 RGB, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"{name} must have shape (H, W, 3) with 3 RGB channels, got {image.shape}"
            + (" (drop the alpha channel)" if image.ndim == 3 and image.shape[2] == 4 else "")
        )
    if image.dtype != np.uint8:
        raise ValueError(
            f"{name} must be uint8 (0–255), got {image.dtype}; convert with (img * 255).round().astype(np.uint8) "
            "if it is float in [0, 1]"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {image.shape}")
    return image


def to_uint8_tile(image: torch.Tensor, size: int) -> torch.Tensor:
    """[3, H, W] uint8 tensor → [3, size, size] float tensor holding uint8 levels (0..255)."""
    x = image.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(
            x.unsqueeze(0), size=(size, size), mode="bicubic", antialias=True, align_corners=False
        )
        x = x.squeeze(0).round().clamp(0, 255)
    return x


def normalize_pixels(levels: torch.Tensor) -> torch.Tensor:
    """uint8 levels (any float tensor [..., 3, H, W]) → ImageNet-normalised pixels."""
    mean = torch.tensor(IMAGENET_MEAN, device=levels.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=levels.device).view(3, 1, 1)
    return (levels / 255.0 - mean) / std


def preprocess_views(
    images: Sequence[np.ndarray | None],
    image_mask: Sequence[bool],
    size: int = 448,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Views of one sample → [V, 3, size, size] normalised float32; masked views become black images."""
    if len(images) != len(image_mask):
        raise ValueError(f"got {len(images)} images but an image_mask of length {len(image_mask)}")
    tiles = []
    for i, (image, present) in enumerate(zip(images, image_mask, strict=True)):
        if not present:
            tiles.append(torch.zeros(3, size, size, device=device))
            continue
        if image is None:
            raise ValueError(
                f"image_mask[{i}] is True but view {i} is None; pass the image or set the mask False"
            )
        array = check_image(image, f"images[{i}]")
        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device).permute(2, 0, 1)
        tiles.append(to_uint8_tile(tensor, size))
    return normalize_pixels(torch.stack(tiles))

"""Preprocessing of thesis §5.1: grey, pad black to square, resize; stored as uint8.

Finetuning images are padded with black to a square (centred) and resized to 64 × 64, their
masks with nearest-neighbour; pretraining images are resized to 110 × 110 (the random resized
crop to 64 happens later, during augmentation). Sizes are settings of the recipe.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def pad_to_square(image: np.ndarray) -> np.ndarray:
    """(H, W) -> (S, S) with S = max(H, W), content centred, padding 0 (black)."""
    h, w = image.shape
    s = max(h, w)
    out = np.zeros((s, s), dtype=image.dtype)
    top, left = (s - h) // 2, (s - w) // 2
    out[top : top + h, left : left + w] = image
    return out


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """float32 (H, W) in [0, 1] -> float32 (size, size), antialiased bilinear (PIL mode F)."""
    pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """bool (H, W) -> uint8 {0, 1} (size, size), nearest-neighbour (thesis §5.1)."""
    pil = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
    return (np.asarray(pil.resize((size, size), Image.Resampling.NEAREST)) > 127).astype(np.uint8)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float (H, W) in [0, 1] -> uint8, rounded and clipped."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def finetune_view(
    image: np.ndarray, mask: np.ndarray | None, size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pad to square, resize; returns uint8 image (size, size) and uint8 {0,1} mask or None."""
    img = to_uint8(resize_image(pad_to_square(image), size))
    m = None if mask is None else resize_mask(pad_to_square(mask), size)
    return img, m


def pretrain_view(image: np.ndarray, size: int, *, pad: bool = False) -> np.ndarray:
    """Resize (optionally after padding to square) to (size, size) uint8 (thesis §5.1: resize to 110)."""
    if pad:
        image = pad_to_square(image)
    return to_uint8(resize_image(image, size))
